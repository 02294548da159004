#pragma once
// parley-cli's chat mode across reconnects (issue 14, docs/protocol.md "Session resume" and
// "Durability, recovery and exactly-once"): the resume token of the last welcome, the newest seq
// seen in each room, and every msg/dm sent and not yet acked, with its id. After a reconnect:
// hello with the token (plain hello when the server answers resume_failed); on the welcome, join
// every room with since_seq (what was missed, no gap, no duplicate) and resend the unacked DMs;
// on each room's history reply, resend that room's unacked messages with the same ids, which the
// server stores once (a resend of a stored id gets the original ack). Pure: no I/O.
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tools/chat_commands.h"
#include "tools/chat_display.h"

namespace tools::cli {

class ChatReconnect {
 public:
  // `id_prefix` keeps ids unique across runs: the server recognises a user's ids for
  // --dedup-window minutes, also after a restart (random_id_prefix() makes one).
  explicit ChatReconnect(std::string id_prefix) : id_prefix_(std::move(id_prefix)) {}

  // The JSON for a msg or dm command with a fresh id, remembered until its ack (or an error
  // other than unavailable). Other commands: write_client_message without an id.
  std::string send(const ChatCommand& command);
  // The hello that opens each connection: with the resume token of the last welcome, if any.
  std::string hello(std::string_view name) const;
  // The connection was lost: the next welcome rejoins `rooms` (see on_event) and resends.
  void on_connection_lost() {
    reconnecting_ = true;
    welcomed_ = false;
    awaiting_.clear();
  }
  // Takes one server message (already formatted); returns what to send in reply, in order.
  // `rooms` are the rooms to rejoin after a reconnect.
  std::vector<std::string> on_event(const ServerEvent& event, std::string_view name,
                                    const std::vector<std::string>& rooms);
  // True once the connection is welcomed and every rejoin has its history reply: new input can
  // go out without overtaking the recovery.
  bool ready() const { return welcomed_ && awaiting_.empty(); }
  // Messages sent and not acked.
  size_t unacked() const { return unacked_.size(); }
  // The newest seq seen in `room` (0: none).
  uint64_t last_seq(std::string_view room) const;
  // The current resume token (empty: none).
  const std::string& resume_token() const { return resume_; }

 private:
  struct Unacked {
    std::string id;
    std::string room;  // empty for a dm
    std::string json;
  };
  void note_seq(const std::string& room, uint64_t seq);
  void resend(std::string_view room, std::vector<std::string>& out) const;

  std::string id_prefix_;
  uint64_t next_id_ = 1;
  std::string resume_;
  bool reconnecting_ = false;
  bool welcomed_ = false;
  std::vector<Unacked> unacked_;  // in send order
  std::map<std::string, uint64_t, std::less<>> last_seq_;
  std::set<std::string, std::less<>> awaiting_;  // rooms rejoined whose history has not come
};

// 12 random hex digits and a '-': a prefix no earlier run of this user is likely to have used.
std::string random_id_prefix();

}  // namespace tools::cli
