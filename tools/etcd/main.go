// Command etcd builds the etcd server at the version the pinned Kubernetes links as a client.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
