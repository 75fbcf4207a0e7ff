package plugins

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/parleyhq/parley/abi"
)

// StockPlugin describes a plugin Parley ships in plugins/stock, built by
// `make plugins` to bin/plugins/<Name>.wasm.
type StockPlugin struct {
	Name         string
	Capabilities []abi.Capability // what it needs granted
	Order        int              // its default place in the chains
}

// Stock lists the stock plugins. Their configuration is documented in
// each plugin's package comment and in docs/abi.md.
var Stock = []StockPlugin{
	{Name: "jwtauth", Capabilities: []abi.Capability{abi.CapConfig, abi.CapClock}, Order: 10},
	{Name: "roompolicy", Capabilities: []abi.Capability{abi.CapConfig}, Order: 20},
	{Name: "presencewebhook", Capabilities: []abi.Capability{abi.CapConfig, abi.CapWebhook}, Order: 30},
}

// StockSpec returns the Spec that loads the stock plugin name from its
// module bytes with config.
func StockSpec(name, version string, module []byte, config json.RawMessage) (Spec, error) {
	i := slices.IndexFunc(Stock, func(s StockPlugin) bool { return s.Name == name })
	if i < 0 {
		return Spec{}, fmt.Errorf("%w: %q is not a stock plugin", ErrNotFound, name)
	}
	s := Stock[i]
	return Spec{Name: name, Version: version, Module: module, Config: config,
		Capabilities: slices.Clone(s.Capabilities), Order: s.Order}, nil
}
