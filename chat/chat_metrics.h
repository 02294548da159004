#pragma once
// The /chat application's counters in the Prometheus text format, served by parleyd's /metrics
// and the embedding API's (parley::Server::metrics). Moved out of parleyd_worker.cpp (issue 17)
// so the two serve the same text.
#include <string>

#include "chat/chat_app.h"
#include "chat/store/room_log.h"

namespace chat {

// The access-control counters (ChatAccessStats): refusals by status, rate limits, room limits.
std::string render_access_metrics(const ChatAccessStats& stats);
// What the rooms hold (ChatRoomStats): rooms, history bytes and budget, evictions.
std::string render_room_metrics(const ChatRoomStats& stats);
// The room log's counters (RoomLogStats) and the app's store-related refusals.
std::string render_store_metrics(const RoomLogStats& stats, const ChatStats& chat);
// All of the chat application's figures, as parleyd's /metrics has them: the three above and
// chat/parleyd/operations.h render_chat_metrics (users, members, messages).
std::string render_app_metrics(const ChatApp& app);

}  // namespace chat
