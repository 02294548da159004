#pragma once
// The browser page's files (chat/web/*), compiled into the library. The definitions are
// generated at build time by tools/embed_web_assets.sh (Makefile: $(BUILD)/gen/web_assets.cpp).
#include <cstddef>
#include <span>
#include <string_view>

namespace chat {

// One embedded file: the URL path it is served at ("/app.js"), its Content-Type, its bytes, and
// a strong ETag (quoted, from a SHA-256 of the bytes). All views point into static storage.
struct WebAsset {
  std::string_view path;
  std::string_view content_type;
  std::string_view body;
  std::string_view etag;
};

// Every embedded file, index.html included (under "/index.html"), in path order.
std::span<const WebAsset> web_assets();

// The asset served at `path`, or nullptr. "/" is index.html.
const WebAsset* find_web_asset(std::string_view path);

}  // namespace chat
