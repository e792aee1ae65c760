// Wrapper module for the kwok binary (fake nodes/pods for a kubelet-less
// control plane). sigs.k8s.io/kwok@v0.7.0's go.mod has no replace directives.
module meshca.local/toolchain/kwok

go 1.24.0

require sigs.k8s.io/kwok v0.7.0
