# web.mk — the dashboard's static files (service/web/) embedded into allotd
# by scripts/embed-web.sh (docs/DASHBOARD.md).
WEB_FILES := $(sort $(wildcard service/web/*))
LIB_OBJ   += $(BUILD)/obj/gen/web_assets.o

# (build/gen/ too: the fuzz targets link the library from there, Makefile FUZZ_GEN)
$(sort $(BUILD)/gen/web_assets.c build/gen/web_assets.c): $(WEB_FILES) scripts/embed-web.sh mk/web.mk
	@mkdir -p $(dir $@)
	@echo "  EMBED   service/web ($(words $(WEB_FILES)) files)"
	$(Q)sh scripts/embed-web.sh $@ $(WEB_FILES)

# The dashboard's render time with 100 institutions (bench/web_render.sh,
# seeded by bench/web_seed): figures, not asserted; not part of `make bench`
# (it is a browser run).
.PHONY: bench-web
bench-web: all $(BUILD)/bench/web_seed
	@bash bench/web_render.sh $(WEB_BENCH_ARGS)
