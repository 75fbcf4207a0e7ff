package abi

// PageSize is the size of a WebAssembly memory page in bytes.
const PageSize = 65536

// Default per-plugin limits. The operator may override the first group per
// plugin; the second group is fixed by the ABI.
const (
	DefaultMemoryPages       = 256      // 16 MiB of linear memory per instance
	DefaultCallTimeoutMillis = 100      // wall-clock deadline of one hook call
	DefaultInitTimeoutMillis = 5000     // instantiate + _initialize + init hook
	DefaultMaxInput          = 64 << 10 // bytes of hook input
	DefaultMaxOutput         = 64 << 10 // bytes of hook output
	DefaultPoolSize          = 4        // instances per plugin
	DefaultLogRate           = 20       // log lines per second (burst: twice that)
)

// Fixed limits of ABI v1.
const (
	MaxErrorMessage    = 1024      // bytes kept from error_set
	MaxLogLine         = 4096      // bytes kept from one log call
	MaxReason          = 1024      // bytes kept from a decision's reason
	MaxMetadata        = 64 << 10  // bytes of metadata in a decision or claims
	MaxKVKey           = 256       // bytes of a kv key
	MaxKVValue         = 64 << 10  // bytes of a kv value
	MaxKVKeys          = 10000     // keys per plugin
	MaxWebhookRequest  = 256 << 10 // bytes of one webhook_send payload
	MaxWebhooksPerCall = 16        // webhook_send calls per hook call
	MaxRandomFill      = 64 << 10  // bytes per random_fill call
)
