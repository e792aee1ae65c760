// Wrapper module for building etcd from the Go module proxy.
// go.etcd.io/etcd/server/v3@v3.5.35's go.mod only has RELATIVE replaces
// (go.etcd.io/etcd/{api,client/pkg,client/v2,client/v3,pkg,raft}/v3 => ../...,
// plus two "./FORBIDDEN_DEPENDENCY" guards); the published modules of the same
// release are used instead, through the server's own requirements.
module meshca.local/toolchain/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 v3.5.35
