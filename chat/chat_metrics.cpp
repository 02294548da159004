#include "chat/chat_metrics.h"

#include "chat/parleyd/operations.h"
#include "chat/prometheus_text.h"

namespace chat {

// The /chat access-control counters (ChatAccessStats) in the Prometheus text format.
std::string render_access_metrics(const ChatAccessStats& stats) {
  std::string out;
  auto counter = [&out](const char* name, const char* help, uint64_t value) {
    append_metric(out, name, "counter", help, value);
  };
  counter("parley_chat_unauthorized_total", "/chat upgrades refused 401 (missing or invalid token)",
          stats.unauthorized);
  counter("parley_chat_forbidden_origin_total", "/chat upgrades refused 403 (Origin)", stats.forbidden_origins);
  counter("parley_chat_handshake_limited_total", "/chat upgrades refused 429 (--handshake-rate)",
          stats.handshakes_limited);
  counter("parley_chat_rate_limited_total", "chat messages dropped by --rate-limit", stats.rate_limited);
  counter("parley_chat_rate_closed_total", "connections closed 1008 for flooding", stats.rate_closed);
  counter("parley_chat_forbidden_room_total", "joins outside a token's rooms claim", stats.forbidden_rooms);
  counter("parley_chat_room_full_total", "joins refused by --max-room-members", stats.rooms_full);
  counter("parley_chat_room_limit_total", "joins refused by --max-rooms or --max-rooms-per-ip", stats.room_limit);
  return out;
}

// What the /chat rooms hold (ChatRoomStats) in the Prometheus text format.
std::string render_room_metrics(const ChatRoomStats& stats) {
  std::string out;
  auto metric = [&out](const char* name, const char* type, const char* help, uint64_t value) {
    append_metric(out, name, type, help, value);
  };
  metric("parley_chat_rooms", "gauge", "live chat rooms", stats.rooms);
  metric("parley_chat_history_bytes", "gauge", "heap bytes held by all rooms' history", stats.history_bytes);
  metric("parley_chat_history_memory_bytes", "gauge", "the --history-memory budget (0: none)",
         stats.history_memory);
  metric("parley_chat_history_evictions_total", "counter", "messages evicted to keep --history-memory",
         stats.history_evictions);
  return out;
}

// The room log's counters (RoomLogStats) and the app's store-related refusals, Prometheus text.
std::string render_store_metrics(const RoomLogStats& stats, const ChatStats& chat) {
  std::string out;
  auto metric = [&out](const char* name, const char* type, const char* help, uint64_t value) {
    append_metric(out, name, type, help, value);
  };
  metric("parley_store_commits_total", "counter", "store transactions committed", stats.commits);
  metric("parley_store_messages_total", "counter", "messages committed to the store", stats.messages);
  metric("parley_store_batches_total", "counter", "store transactions attempted", stats.batches);
  metric("parley_store_errors_total", "counter", "store transactions failed (their senders got unavailable)",
         stats.errors);
  metric("parley_store_unavailable_total", "counter", "messages refused: the store failed or its queue was full",
         stats.unavailable + stats.rejected_full);
  metric("parley_store_rejected_full_total", "counter", "store requests refused at the queue bound",
         stats.rejected_full);
  metric("parley_store_duplicates_total", "counter", "resent messages answered with their original ack",
         stats.duplicates);
  metric("parley_store_reads_total", "counter", "store reads (joins, recoveries, history)", stats.reads);
  metric("parley_store_max_batch", "gauge", "most messages committed in one transaction", stats.max_batch);
  metric("parley_store_queue_depth", "gauge", "store requests submitted and not yet completed", stats.queue_depth);
  metric("parley_store_queue_limit", "gauge", "the bound on parley_store_queue_depth (0: synchronous store)",
         stats.queue_limit);
  metric("parley_chat_unavailable_total", "counter", "chat requests answered error unavailable", chat.unavailable);
  return out;
}

std::string render_app_metrics(const ChatApp& app) {
  std::string out = render_access_metrics(app.access_stats()) + render_room_metrics(app.room_stats()) +
                    render_store_metrics(app.room_log().stats(), app.stats()) + render_chat_metrics(app);
  app.room_log().render_engine_metrics(out);
  return out;
}

}  // namespace chat
