// The etcd server binary: the same entry point as etcd's own main package
// (etcdmain.Main), in our wrapper module so it builds from the module proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
