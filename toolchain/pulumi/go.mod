// Wrapper module for building the Pulumi CLI from the Go module proxy.
// `go install github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@v3.274.1` is refused
// because pkg/v3's go.mod has replace directives, so we require it here and
// copy its NON-relative replaces.
//
// From github.com/pulumi/pulumi/pkg/v3@v3.274.1 go.mod:
//   line 5: replace github.com/pulumi/pulumi/sdk/v3 => ../sdk          (relative: replaced by the
//           published sdk/v3 v3.274.1 below, same release)
//   line 7: replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
//           (copied verbatim)
module meshca.local/toolchain/pulumi

go 1.26.6

require (
	github.com/pulumi/pulumi/pkg/v3 v3.274.1
	github.com/pulumi/pulumi/sdk/v3 v3.274.1
)

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
