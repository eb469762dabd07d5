#!/usr/bin/env python3
"""Pack files into a single-layer OCI image archive that `ctr images import` accepts.

Usage: mkoci.py OUT.tar IMAGE_REF ENTRYPOINT_JSON [--platform linux/ARCH] ENTRY [ENTRY ...]
                 [--platform linux/ARCH ENTRY [ENTRY ...]] ...
  ENTRY is SRC=DEST (copy file SRC to DEST in the image, keeping its mode) or
  link:DEST=TARGET (symlink DEST -> TARGET in the image).
  Each --platform starts the entries of one platform's image (ARCH: amd64, arm64, ...);
  without one, the entries make an image for this machine's platform. Several platforms
  make a multi-platform image: IMAGE_REF names an image index of their manifests.
  Env MKOCI_USER (e.g. 65535:65535) sets the image's default user; unset, root.

There is no registry and no container engine on the test machines, so the images the
cluster runs are written here by hand: an OCI image layout (oci-layout, index.json,
blobs/sha256/*) in a tar. Files are owned by root with mtime 0, so the same inputs give
the same digests. The manifest is annotated with the full image name, which ctr uses as
the image's name on import.
"""
import gzip
import hashlib
import io
import json
import os
import platform
import sys
import tarfile

# platform.machine() -> the OCI architecture name.
OCI_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def tar_entry(path, data=None, mode=0o755, link=None):
    info = tarfile.TarInfo(path)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    info.mode = mode
    if link is not None:
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, link, 0o777
    elif data is None:
        info.type = tarfile.DIRTYPE
    else:
        info.size = len(data)
    return info


def build_layer(files, links):
    """Return the uncompressed layer tar: FILES ({dest: (bytes, mode)}), LINKS ({dest:
    target}) and their parent directories."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = set()
        for dest in list(files) + list(links):
            parts = dest.strip("/").split("/")[:-1]
            for i in range(len(parts)):
                dirs.add("/".join(parts[: i + 1]))
        for d in sorted(dirs):
            tar.addfile(tar_entry(d))
        for dest, (data, mode) in sorted(files.items()):
            tar.addfile(tar_entry(dest.strip("/"), data, mode), io.BytesIO(data))
        for dest, target in sorted(links.items()):
            tar.addfile(tar_entry(dest.strip("/"), link=target))
    return buf.getvalue()


def parse_platforms(args):
    """Split ARGS into [(arch, files, links)], one per --platform section."""
    sections = []
    if not args or args[0] != "--platform":
        sections.append((OCI_ARCH.get(platform.machine(), platform.machine()), {}, {}))
    it = iter(args)
    for spec in it:
        if spec == "--platform":
            os_name, _, arch = next(it).partition("/")
            if os_name != "linux" or not arch:
                sys.exit(f"mkoci: unsupported platform {os_name}/{arch}: use linux/ARCH")
            sections.append((arch, {}, {}))
            continue
        _, files, links = sections[-1]
        if spec.startswith("link:"):
            dest, target = spec[len("link:"):].split("=", 1)
            links[dest] = target
            continue
        src, dest = spec.split("=", 1)
        with open(src, "rb") as f:
            files[dest] = (f.read(), os.stat(f.fileno()).st_mode & 0o7777)
    return sections


def main(argv):
    if len(argv) < 5:
        sys.exit(__doc__)
    out, ref, entrypoint = argv[1], argv[2], json.loads(argv[3])
    blobs = {}

    def blob(data, media_type):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    manifests = []
    for arch, files, links in parse_platforms(argv[4:]):
        layer = build_layer(files, links)
        layer_gz = gzip.compress(layer, mtime=0)
        config = {
            "architecture": arch,
            "os": "linux",
            "config": {
                "Entrypoint": entrypoint,
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            },
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
        }
        if os.environ.get("MKOCI_USER"):
            config["config"]["User"] = os.environ["MKOCI_USER"]
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
            "layers": [blob(layer_gz, "application/vnd.oci.image.layer.v1.tar+gzip")],
        }
        desc = blob(json.dumps(manifest).encode(), manifest["mediaType"])
        desc["platform"] = {"architecture": arch, "os": "linux"}
        manifests.append(desc)

    index_type = "application/vnd.oci.image.index.v1+json"
    if len(manifests) == 1:
        desc = manifests[0]
    else:
        # ctr names what index.json's entries point at, so the name goes on one entry
        # pointing at a nested index of the platforms' manifests.
        nested = {"schemaVersion": 2, "mediaType": index_type, "manifests": manifests}
        desc = blob(json.dumps(nested).encode(), index_type)
    desc["annotations"] = {
        "io.containerd.image.name": ref,
        "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[-1],
    }
    index = {"schemaVersion": 2, "mediaType": index_type, "manifests": [desc]}

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        entries = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
                   "index.json": json.dumps(index).encode()}
        for digest, data in blobs.items():
            entries["blobs/sha256/" + digest.split(":", 1)[1]] = data
        for d in ("blobs", "blobs/sha256"):
            tar.addfile(tar_entry(d))
        for name, data in entries.items():
            tar.addfile(tar_entry(name, data, 0o644), io.BytesIO(data))


if __name__ == "__main__":
    main(sys.argv)
