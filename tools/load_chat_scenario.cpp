// The chat scenario's part of the worker loop (tools/load_worker_internal.h). Every worker holds
// users; each user says hello, joins its rooms (tools/load_chat.h's ChatRoomPlan) and, once the
// shared join barrier opens the window (load_broadcast.cpp), talks on its own open-loop schedule,
// skipping its idle seconds. Planned reconnects close with a close handshake (or, with
// --reconnect-abrupt, drop TCP with messages in flight) and come back under the same name; a
// connection lost otherwise (the server restarted) comes back too, after kRetryDelay. Either way
// the user resends its unacked messages with the same ids (tools/load_client.h send_publish()).
// The drain needs every worker's figures, so they meet in BroadcastShared: each adds the
// deliveries its acks imply and the deliveries it received.
#include <algorithm>
#include <bit>
#include <string>
#include <sys/socket.h>

#include "tools/load_chat.h"
#include "tools/load_worker_internal.h"

namespace tools::load_detail {

void Worker::setup_chat() {
  const std::string prefix = options_.room.empty() ? std::string("load-") + run_tag_ : options_.room;
  context_.chat_rooms.clear();
  context_.chat_rooms.reserve(options_.rooms);
  for (uint64_t r = 0; r < options_.rooms; ++r) context_.chat_rooms.push_back(prefix + "-" + std::to_string(r));
  context_.room_plan = ChatRoomPlan{options_.connections, options_.rooms, options_.rooms_per_user};
  ring_size_ = std::bit_ceil(static_cast<uint32_t>(options_.max_in_flight));
  rings_.assign(slots_.size() * ring_size_, 0);
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    slots_[i].client.attach_ring(&rings_[i * ring_size_], ring_size_ - 1);
    slots_[i].client.set_chat_role(ChatRole::kUser);
    slots_[i].client.set_chat_user(plan_.first_user + i);
  }
}

void Worker::start_talking() {
  const uint64_t n = slots_.size();
  message_pacer_ = OpenLoopPacer(window_start_, plan_.rate);
  cursor_ = 0;
  for (uint32_t i = 0; i < n; ++i) slots_[i].pacer = OpenLoopPacer(window_start_, plan_.rate, n, i);
  // Only users joined now take part; each chooses (by hash) whether and when it reconnects.
  const auto span = static_cast<uint64_t>(options_.duration_s * kReconnectSpan * kSecond);
  for (uint32_t i = 0; i < n; ++i) {
    double at = 0;
    if (slots_[i].fd < 0 || !chat_user_reconnects(plan_.start_ns, plan_.first_user + i, options_.reconnect_share, at)) {
      continue;
    }
    reconnect_plan_.push_back({window_start_ + static_cast<uint64_t>(at * static_cast<double>(span)), i});
  }
  std::sort(reconnect_plan_.begin(), reconnect_plan_.end());
  result_.counters.reconnects_planned = reconnect_plan_.size();
}

void Worker::talk(uint32_t index) {
  Slot& slot = slots_[index];
  // A user away (reconnecting) owes nothing: on_user_joined() skips what fell due meanwhile.
  // Messages due before the window's end still go when handled just after it.
  if (slot.fd < 0 || !slot.client.chat_joined() || now_ < window_start_) return;
  uint64_t intended = 0;
  while (take_due(slot, intended)) {
    const uint64_t second = (intended - window_start_) / kSecond;
    if (chat_user_idle(plan_.start_ns, plan_.first_user + index, second, options_.idle_share)) {
      ++result_.counters.idle_skipped;
      continue;
    }
    // Open loop: the stamp is the intended time, so a late send shows as latency.
    slot.client.send_publish(context_, intended, out_);
  }
}

void Worker::on_user_joined(uint32_t index) {
  Slot& slot = slots_[index];
  slot.was_joined = true;
  if (!slot.reconnecting) {
    ++result_.counters.subscribers_joined;
    plan_.shared->joined.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  slot.reconnecting = false;
  ++result_.counters.reconnects;
  const uint64_t away = slot.pacer.owed(now_);
  result_.counters.idle_skipped += away;
  slot.pacer.skip_to(now_);
}

void Worker::restart_reconnect(uint32_t index, bool planned) {
  Slot& slot = slots_[index];
  // Draining: only a user that still owes answers (unacked messages to resend) comes back.
  if (phase_ == RunPhase::kDone || (phase_ == RunPhase::kDraining && slot.client.in_flight() == 0)) return;
  if (planned) {
    // A finished close handshake ended the session (no resume); a dropped one is held for resume.
    restart_.push_back(index);
    return;
  }
  if (!slot.reconnecting) ++result_.counters.connections_lost;
  slot.reconnecting = true;
  chat_retry_.push_back({now_ + kRetryDelay, index});
}

void Worker::drop_slot(uint32_t index) {
  Slot& slot = slots_[index];
  const linger abort{1, 0};  // close() then sends an RST: the server reads ECONNRESET (1006)
  setsockopt(slot.fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
  // Back after kRetryDelay, as after a loss, not at once: a hello racing the RST made parleyd
  // (rarely) hand the new connection the user's own last msg from the old one.
  close_slot(index, false);
}

void Worker::advance_chat() {
  BroadcastShared& shared = *plan_.shared;
  if (!chat_retry_.empty() && phase_ != RunPhase::kDone) {
    // open_slot() may fail at once and queue the user again: take the list out first.
    std::vector<std::pair<uint64_t, uint32_t>> retry;
    retry.swap(chat_retry_);
    for (auto [when, index] : retry) {
      if (slots_[index].fd >= 0) continue;
      if (when <= now_) {
        open_slot(index);
      } else {
        chat_retry_.push_back({when, index});
      }
    }
  }
  if (phase_ == RunPhase::kRunning) {
    if (now_ >= window_start_) {
      sample_server_cpu_begin();
      schedule_due();
      flush_dirty();
      for (; reconnect_cursor_ < reconnect_plan_.size() && reconnect_plan_[reconnect_cursor_].first <= now_;
           ++reconnect_cursor_) {
        const uint32_t index = reconnect_plan_[reconnect_cursor_].second;
        Slot& slot = slots_[index];
        if (slot.fd < 0 || slot.client.phase() != ClientPhase::kOpen) continue;  // gone already (an error)
        slot.reconnecting = true;
        if (options_.reconnect_abrupt) {
          // No close frame: the server sees 1006 and holds the session; what is in flight stays
          // unacked (or its ack is lost) and is resent after the rejoin. One msg goes out just
          // before the drop, so there always is one whose ack cannot have been read.
          if (slot.client.chat_joined() && slot.client.can_send() &&
              slot.client.in_flight() < options_.max_in_flight) {
            slot.client.send_publish(context_, now_, out_);
          }
          send_out(index);
          if (slot.fd >= 0) drop_slot(index);
          continue;
        }
        // RFC 6455 7.1.2: start the close handshake; finish_cycle() opens the slot again.
        slot.client.forget_resume();
        slot.client.send_close(context_, out_);
        slot.deadline_ns = now_ + kCloseTimeout;
        send_out(index);
      }
    }
    if (now_ < window_end_) return;
    // Sends the schedule called for in the window that the in-flight cap (or a closed user) never let out.
    for (const Slot& slot : slots_) {
      const uint64_t due = slot.pacer.due(window_end_ - 1);
      if (due > slot.pacer.taken()) result_.counters.unsent += due - slot.pacer.taken();
    }
    for (Slot& slot : slots_) slot.in_dirty = false;
    dirty_.clear();
    phase_ = RunPhase::kDraining;
    phase_deadline_ = now_ + kBroadcastDrainTime;
  }
  if (phase_ != RunPhase::kDraining) return;
  const uint64_t mine = result_.counters.deliveries;
  if (mine != deliveries_posted_) {
    shared.deliveries.fetch_add(mine - deliveries_posted_, std::memory_order_relaxed);
    deliveries_posted_ = mine;
  }
  bool done = now_ >= phase_deadline_;
  if (!chat_answered_) {
    // Every user's last msg has its answer, so this worker's share of the expectation is final.
    if (publishers_answered() || done) {
      shared.expected.fetch_add(result_.counters.deliveries_expected, std::memory_order_relaxed);
      shared.answered_workers.fetch_add(1, std::memory_order_release);
      chat_answered_ = true;
      phase_deadline_ = now_ + kBroadcastDrainTime;
      quiet_since_ = now_;
      done = false;
    }
  } else if (shared.answered_workers.load(std::memory_order_acquire) >= plan_.count) {
    const uint64_t total = shared.deliveries.load(std::memory_order_relaxed);
    const bool exact = options_.reconnect_share == 0 && result_.counters.connections_lost == 0 &&
                       shared.joined.load(std::memory_order_relaxed) == options_.connections;
    if (exact) {
      done = done || total >= shared.expected.load(std::memory_order_relaxed);
    } else if (total != shared_seen_) {
      shared_seen_ = total;
      quiet_since_ = now_;
    } else {
      done = done || now_ - quiet_since_ >= kChatQuietTime;
    }
  }
  if (done) {
    sample_server_cpu_end();
    phase_ = RunPhase::kDone;
  }
}

uint64_t Worker::next_chat_wakeup() const {
  if (phase_ != RunPhase::kRunning) return std::min(phase_deadline_, now_ + kBarrierPoll);
  if (!window_open_) return now_ + kBarrierPoll;
  if (now_ < window_start_) return window_start_;
  uint64_t at = std::min(window_end_, message_pacer_.intended(cursor_));
  if (reconnect_cursor_ < reconnect_plan_.size()) at = std::min(at, reconnect_plan_[reconnect_cursor_].first);
  for (const auto& [when, index] : chat_retry_) at = std::min(at, when);
  return at;
}

}  // namespace tools::load_detail
