#!/bin/sh
# fetch-model.sh — put the default model (stories260K.gguf) in models/.
# Copied from ../shared/models when present, otherwise downloaded and checked
# against its sha256.  Failure is not fatal: allotd starts without a model.
set -u
cd "$(dirname "$0")/.."
NAME=stories260K.gguf
SHA=270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d
URL=https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf
DEST=models/$NAME
mkdir -p models

check() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA" ]; }

check "$DEST" && exit 0
if [ -f ../shared/models/$NAME ]; then
	cp ../shared/models/$NAME "$DEST.tmp" && mv "$DEST.tmp" "$DEST"
	check "$DEST" && { echo "model: copied $NAME from ../shared/models"; exit 0; }
fi
echo "model: downloading $NAME"
if curl -fsSL --max-time 60 -o "$DEST.tmp" "$URL" && check "$DEST.tmp"; then
	mv "$DEST.tmp" "$DEST"
	echo "model: $DEST verified"
else
	rm -f "$DEST.tmp"
	echo "model: could not fetch $NAME; allotd will start without a model" >&2
fi
exit 0
