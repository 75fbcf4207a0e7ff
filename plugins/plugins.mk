# Makefile fragment for the WASM plugins; the top-level Makefile includes
# it. `make plugins` builds every stock plugin to bin/plugins/<name>.wasm
# and the test plugins to bin/plugins/testdata/ (the tests build their own
# copies when these are missing or stale). The WAT test plugins need
# wat2wasm from Debian's wabt package.

PLUGIN_GO      ?= go
WAT2WASM       ?= wat2wasm
PLUGIN_OUT     := bin/plugins
STOCK_PLUGINS  := $(notdir $(wildcard plugins/stock/*))
TEST_GO_PLUGINS := testplug
TEST_WAT_PLUGINS := $(basename $(notdir $(wildcard plugins/testdata/wat/*.wat)))
PLUGIN_DEPS    := $(wildcard abi/*.go sdk/plugin/*.go) go.mod go.sum

.PHONY: plugins plugins-stock plugins-test plugins-clean

plugins: plugins-stock plugins-test

plugins-stock: $(foreach p,$(STOCK_PLUGINS),$(PLUGIN_OUT)/$(p).wasm)

plugins-test: $(foreach p,$(TEST_GO_PLUGINS) $(TEST_WAT_PLUGINS),$(PLUGIN_OUT)/testdata/$(p).wasm)

$(PLUGIN_OUT)/%.wasm: plugins/stock/%/*.go $(PLUGIN_DEPS)
	@mkdir -p $(dir $@)
	GOOS=wasip1 GOARCH=wasm $(PLUGIN_GO) build -buildmode=c-shared -trimpath -o $@ ./plugins/stock/$*

$(PLUGIN_OUT)/testdata/%.wasm: plugins/testdata/%/*.go $(PLUGIN_DEPS)
	@mkdir -p $(dir $@)
	GOOS=wasip1 GOARCH=wasm $(PLUGIN_GO) build -buildmode=c-shared -trimpath -o $@ ./plugins/testdata/$*

$(PLUGIN_OUT)/testdata/%.wasm: plugins/testdata/wat/%.wat
	@mkdir -p $(dir $@)
	$(WAT2WASM) -o $@ $<

plugins-clean:
	rm -rf $(PLUGIN_OUT)
