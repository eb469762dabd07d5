//! A straight line through a bench's measurements, to carry a figure past the largest N it was
//! measured at (the scale sweep's projection to 5,000 nodes, issue 22). Pure arithmetic, so
//! that it is tested without a cluster.

/// `y = a + b·x`, fitted by ordinary least squares, and how much of the spread of the points
/// it explains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearFit {
    /// Intercept: the figure's part that does not grow with x.
    pub a: f64,
    /// Slope: what each unit of x adds.
    pub b: f64,
    /// Coefficient of determination, 1 - SS_res / SS_tot; 1 when the points lie on the line
    /// (also when they are all equal, where there is no spread to explain).
    pub r2: f64,
}

impl LinearFit {
    /// The line's value at `x`.
    pub fn at(&self, x: f64) -> f64 {
        self.a + self.b * x
    }
}

/// Fits `y = a + b·x` to `points` (x, y). None with fewer than two distinct x (no line is
/// determined) or a value that is not finite.
pub fn fit(points: &[(f64, f64)]) -> Option<LinearFit> {
    if points.iter().any(|(x, y)| !x.is_finite() || !y.is_finite()) {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    // Zero for one point or any number at the same x (and NaN for none).
    if sxx.is_nan() || sxx <= 0.0 {
        return None;
    }
    let b = sxy / sxx;
    let a = mean_y - b * mean_x;
    let ss_tot: f64 = points.iter().map(|p| (p.1 - mean_y).powi(2)).sum();
    let ss_res: f64 = points.iter().map(|p| (p.1 - (a + b * p.0)).powi(2)).sum();
    // Rounding leaves a residual of a few ulps on points that are exactly collinear.
    let r2 = if ss_tot == 0.0 || ss_res <= ss_tot * 1e-12 {
        1.0
    } else {
        1.0 - ss_res / ss_tot
    };
    Some(LinearFit { a, b, r2 })
}

/// `v` with about six significant digits and no exponent, for a line of `key=value` pairs
/// (a slope can be far below 1, an intercept in the hundreds of thousands).
pub fn significant(v: f64) -> String {
    let magnitude = if v == 0.0 {
        0
    } else {
        v.abs().log10().floor() as i32
    };
    let decimals = (5 - magnitude).clamp(0, 6) as usize;
    // `+ 0.0` turns a -0.0 into 0.
    format!("{:.decimals$}", v + 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(x: f64, y: f64) -> bool {
        (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
    }

    #[test]
    fn collinear_points_are_fitted_exactly() {
        // y = 12 + 1.02 x at the sweep's node counts.
        let points: Vec<(f64, f64)> = [1.0, 50.0, 100.0, 200.0, 500.0]
            .iter()
            .map(|&x| (x, 12.0 + 1.02 * x))
            .collect();
        let f = fit(&points).unwrap();
        assert!(close(f.a, 12.0), "{f:?}");
        assert!(close(f.b, 1.02), "{f:?}");
        assert_eq!(f.r2, 1.0, "{f:?}");
        assert!(close(f.at(5000.0), 12.0 + 1.02 * 5000.0), "{f:?}");
    }

    #[test]
    fn a_small_dataset_gives_the_hand_computed_line() {
        // x̄ = 2.5, ȳ = 4; Sxx = 2.25 + 0.25 + 0.25 + 2.25 = 5;
        // Sxy = (-1.5)(-2) + (-0.5)(-1) + (0.5)(1) + (1.5)(2) = 7; so b = 7/5 = 1.4 and
        // a = 4 - 1.4·2.5 = 0.5.
        // Fitted: 1.9, 3.3, 4.7, 6.1; residuals 0.1, -0.3, 0.3, -0.1 -> SS_res = 0.2;
        // SS_tot = 4 + 1 + 1 + 4 = 10, so R² = 1 - 0.2/10 = 0.98.
        let f = fit(&[(1.0, 2.0), (2.0, 3.0), (3.0, 5.0), (4.0, 6.0)]).unwrap();
        assert!(close(f.b, 1.4), "{f:?}");
        assert!(close(f.a, 0.5), "{f:?}");
        assert!(close(f.r2, 0.98), "{f:?}");
        assert!(close(f.at(10.0), 14.5), "{f:?}");
    }

    #[test]
    fn equal_values_are_a_flat_line_explained_in_full() {
        let f = fit(&[(1.0, 7.0), (50.0, 7.0), (200.0, 7.0)]).unwrap();
        assert_eq!((f.a, f.b, f.r2), (7.0, 0.0, 1.0));
    }

    #[test]
    fn fewer_than_two_distinct_x_determine_no_line() {
        assert_eq!(fit(&[]), None);
        assert_eq!(fit(&[(100.0, 3.0)]), None);
        assert_eq!(fit(&[(100.0, 3.0), (100.0, 4.0)]), None);
    }

    #[test]
    fn a_value_that_is_not_finite_gives_no_line() {
        assert_eq!(fit(&[(1.0, 2.0), (2.0, f64::NAN), (3.0, 4.0)]), None);
        assert_eq!(fit(&[(1.0, 2.0), (f64::INFINITY, 3.0)]), None);
    }

    #[test]
    fn significant_keeps_about_six_digits() {
        assert_eq!(significant(0.0), "0.00000");
        assert_eq!(significant(-0.0), "0.00000");
        assert_eq!(significant(1.02), "1.02000");
        assert_eq!(significant(-0.000123456789), "-0.000123");
        assert_eq!(significant(423528.4), "423528");
        assert_eq!(significant(12345678.9), "12345679");
    }
}
