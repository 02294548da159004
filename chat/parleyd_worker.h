#pragma once
// One parleyd process's server: the reactor with /chat, /echo, the page, /healthz and /metrics,
// and graceful shutdown on SIGTERM/SIGINT. parleyd runs one, or forks --workers of them.
#include <functional>

#include "chat/parleyd_options.h"
#include "reactor/socket_ops.h"

namespace reactor {
class TlsContext;
}

namespace chat {

struct WorkerRuntime;  // chat/parleyd/operations.h

// Serves `address` until SIGTERM/SIGINT (first: drain with close 1001 for drain_timeout_ms;
// second: stop at once). `on_listening` runs once the socket listens, with the bound address.
// Returns the process exit status: 0 after a clean stop, 1 on a start-up error (reported on
// stderr in one line). With `tls` (not owned), every connection speaks TLS (wss://, https).
// `runtime` (may be null: no reload, no worker label) carries the command line for SIGHUP
// reloads and the worker's number.
int run_parleyd_worker(const ParleydOptions& options, const reactor::SocketAddress& address, bool reuse_port,
                       const std::function<void(const reactor::SocketAddress&)>& on_listening,
                       const reactor::TlsContext* tls = nullptr, const WorkerRuntime* runtime = nullptr);

// The WebSocket message limit a --max-text setting implies for /chat (chat_hard_message_size):
// room for the text escaped as JSON (up to 6 bytes per byte) plus the envelope, and for texts
// over the limit to be answered text_too_long instead of closing the connection.
uint64_t chat_message_limit(uint64_t max_text_bytes);

}  // namespace chat
