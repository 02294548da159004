// The broadcast scenario's part of the worker loop (tools/load_worker_internal.h). Worker 0 holds
// the publishers and decides when publishing starts; every worker holds subscribers. They meet
// in BroadcastShared: subscribers' joins are counted there, worker 0 opens the window there once
// all have joined (or given up), and it posts the final publish count there when it stops.
#include <algorithm>
#include <bit>
#include <cstdio>
#include <string>

#include "tools/load_worker_internal.h"

namespace tools::load_detail {

void Worker::setup_broadcast() {
  // One tag per run, the same in every worker (they share start_ns): 5 base-36 characters.
  uint64_t mix = (plan_.start_ns ^ (plan_.start_ns >> 29)) * 0x9E3779B97F4A7C15ULL;
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  for (int i = 0; i < 5; ++i) {
    run_tag_[i] = kDigits[(mix >> 40) % 36];
    mix *= 0x2545F4914F6CDD1DULL;
  }
  context_.room = options_.room.empty() ? std::string("load-") + run_tag_ : options_.room;
  context_.text_size = options_.size;
  window_start_ = window_end_ = UINT64_MAX;
  context_.window_start_ns = context_.window_end_ns = UINT64_MAX;
  if (chat()) {
    setup_chat();
    return;
  }
  // Rings (times of msg awaiting their ack) only for the publishers; subscribers never send.
  ring_size_ = std::bit_ceil(static_cast<uint32_t>(plan_.rate != 0 ? options_.max_in_flight : options_.pipeline));
  rings_.assign(plan_.publishers * ring_size_, 0);
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    if (is_publisher(i)) {
      slots_[i].client.attach_ring(&rings_[i * ring_size_], ring_size_ - 1);
      slots_[i].client.set_chat_role(ChatRole::kPublisher);
    } else {
      slots_[i].client.set_chat_role(ChatRole::kSubscriber);
    }
  }
}

size_t Worker::chat_name(uint32_t index, char* out) const {
  // docs/protocol.md "Names": 1-32 of A-Z a-z 0-9 _ . -
  const int n = is_publisher(index)
                    ? std::snprintf(out, 32, "p%u_%s", index, run_tag_)
                    : std::snprintf(out, 32, "s%u_%u_%s", plan_.index, static_cast<uint32_t>(index - plan_.publishers),
                                    run_tag_);
  return n > 0 ? static_cast<size_t>(std::min(n, 31)) : 0;
}

void Worker::on_chat_upgraded(uint32_t index) {
  char name[32];
  const size_t length = chat_name(index, name);
  slots_[index].client.send_hello(context_, std::string_view(name, length), out_);
}

void Worker::on_chat_feed(uint32_t index, const LoadClient::Feed& feed) {
  if (chat()) {
    if (feed.joined) on_user_joined(index);
    if (phase_ == RunPhase::kRunning && window_open_) talk(index);
    return;
  }
  if (feed.joined && !is_publisher(index)) plan_.shared->joined.fetch_add(1, std::memory_order_relaxed);
  if (feed.acks != 0 && is_publisher(index) && phase_ == RunPhase::kRunning && window_open_) publish(index);
}

void Worker::on_subscriber_lost(uint32_t index) {
  if (!is_publisher(index) && !window_open_) plan_.shared->lost.fetch_add(1, std::memory_order_relaxed);
}

void Worker::open_window(uint64_t start_ns) {
  plan_.shared->publish_start_ns.store(start_ns, std::memory_order_release);
  result_.join_s = static_cast<double>(now_ - plan_.start_ns) / kSecond;
}

void Worker::enter_window(uint64_t start_ns) {
  window_open_ = true;
  window_start_ = start_ns;
  window_end_ = start_ns + static_cast<uint64_t>(options_.duration_s * kSecond);
  context_.window_start_ns = window_start_;
  context_.window_end_ns = window_end_;
  // Only subscribers joined now are expected to get every message; the rest are given up on.
  uint64_t joined = 0;
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    if (slot.fd >= 0 && slot.client.chat_joined()) {
      if (!is_publisher(i)) ++joined;
      continue;
    }
    if (slot.fd < 0) continue;
    context_.count_error(ErrorKind::kTimeout, "not joined when publishing began");
    close_slot(i);
  }
  if (started_ < slots_.size()) {
    context_.count_error(ErrorKind::kTimeout, "connections never started before publishing began");
    result_.counters.errors[static_cast<size_t>(ErrorKind::kTimeout)] += slots_.size() - started_ - 1;
  }
  result_.counters.subscribers_measured = joined;
  for (uint32_t i = 0; i < plan_.publishers; ++i) {
    slots_[i].pacer = OpenLoopPacer(window_start_, std::max<uint64_t>(plan_.rate, 1), plan_.publishers, i);
  }
  if (chat()) start_talking();
}

void Worker::publish(uint32_t index) {
  Slot& slot = slots_[index];
  if (slot.fd < 0 || !slot.client.chat_joined() || now_ < window_start_ || now_ >= window_end_) return;
  if (plan_.rate != 0) {
    // Open loop: the stamp is the intended time, so a late send shows as latency.
    uint64_t intended = 0;
    while (take_due(slot, intended)) slot.client.send_publish(context_, intended, out_);
    return;
  }
  while (slot.client.in_flight() < options_.pipeline) slot.client.send_publish(context_, now_, out_);
}

bool Worker::publishers_answered() const {
  // An open publisher still owes answers; a closed one never will.
  const size_t senders = chat() ? slots_.size() : plan_.publishers;
  for (uint32_t i = 0; i < senders; ++i) {
    // chat: a user coming back (chat_retry_, restart_) still owes the answers to its resends.
    if ((slots_[i].fd >= 0 || (chat() && slots_[i].reconnecting)) && slots_[i].client.in_flight() != 0) return false;
  }
  return true;
}

bool Worker::broadcast_drained() const {
  if (!publishing_done_) return false;
  const LoadCounters& c = result_.counters;
  return c.deliveries >= published_final_ * c.subscribers_measured && publishers_answered();
}

void Worker::advance_broadcast() {
  BroadcastShared& shared = *plan_.shared;
  const bool stopping = stop_ != nullptr && *stop_ != 0;
  if (phase_ == RunPhase::kRunning && !window_open_) {
    uint64_t start = shared.publish_start_ns.load(std::memory_order_acquire);
    if (start == 0 && plan_.index == 0) {
      bool ready = shared.joined.load(std::memory_order_relaxed) + shared.lost.load(std::memory_order_relaxed) >=
                   options_.connections;
      ready = ready && started_ >= plan_.publishers;
      for (uint32_t i = 0; i < plan_.publishers && ready; ++i) {
        if (slots_[i].fd >= 0 && !slots_[i].client.chat_joined()) ready = false;
      }
      if (ready || stopping || now_ >= plan_.start_ns + kJoinTimeout) {
        start = now_ + static_cast<uint64_t>(options_.warmup_s * kSecond);
        open_window(start);
      }
    }
    if (start != 0) {
      enter_window(start);
    } else if (stopping || now_ >= plan_.start_ns + kJoinTimeout + kBroadcastDrainTime) {
      phase_ = RunPhase::kDone;  // worker 0 never opened the window (or we were told to stop)
      return;
    }
  }
  if (phase_ == RunPhase::kRunning && window_open_ && stopping && now_ < window_end_) {
    window_end_ = std::max(now_, window_start_);
    context_.window_end_ns = window_end_;
  }
  if (chat()) {
    if (window_open_) advance_chat();
    return;
  }
  if (phase_ == RunPhase::kRunning && window_open_) {
    if (plan_.index == 0 && now_ >= window_start_) {
      sample_server_cpu_begin();
      for (uint32_t i = 0; i < plan_.publishers; ++i) {
        publish(i);
        send_out(i);
      }
    }
    if (now_ >= window_end_) {
      if (plan_.index == 0 && plan_.rate != 0) {
        // Sends the schedule called for in the window that the in-flight cap never let out.
        for (uint32_t i = 0; i < plan_.publishers; ++i) {
          const uint64_t due = slots_[i].pacer.due(window_end_ - 1);
          if (due > slots_[i].pacer.taken()) result_.counters.unsent += due - slots_[i].pacer.taken();
        }
      }
      phase_ = RunPhase::kDraining;
      // The others first wait for worker 0's count, which it posts within one drain time.
      phase_deadline_ = now_ + (plan_.index == 0 ? 1 : 2) * kBroadcastDrainTime;
    }
  }
  if (phase_ == RunPhase::kDraining && !publishing_done_) {
    if (plan_.index == 0) {
      // The count is what the server accepted, so wait for every answer (ack or refusal) first.
      if (publishers_answered() || now_ >= phase_deadline_) {
        published_final_ = result_.counters.published - result_.counters.refused;
        shared.published.store(published_final_, std::memory_order_relaxed);
        shared.publish_end_ns.store(now_, std::memory_order_release);
        publishing_done_ = true;
      }
    } else if (shared.publish_end_ns.load(std::memory_order_acquire) != 0) {
      published_final_ = shared.published.load(std::memory_order_relaxed);
      publishing_done_ = true;
      phase_deadline_ = now_ + kBroadcastDrainTime;
    }
  }
  if (phase_ == RunPhase::kDraining && (broadcast_drained() || now_ >= phase_deadline_)) {
    sample_server_cpu_end();
    phase_ = RunPhase::kDone;
  }
}

uint64_t Worker::next_broadcast_wakeup() const {
  // Waiting on the barrier, or (not worker 0) on worker 0's final count: look every few ms.
  if (phase_ != RunPhase::kRunning) {
    return plan_.index != 0 && !publishing_done_ ? std::min(phase_deadline_, now_ + kBarrierPoll) : phase_deadline_;
  }
  if (!window_open_) return now_ + kBarrierPoll;
  if (plan_.index != 0) return window_end_;
  if (now_ < window_start_) return window_start_;
  uint64_t at = window_end_;
  if (plan_.rate != 0) {
    for (uint32_t i = 0; i < plan_.publishers; ++i) {
      const Slot& slot = slots_[i];
      if (slot.fd >= 0 && slot.client.can_send() && slot.client.in_flight() < options_.max_in_flight) {
        at = std::min(at, slot.pacer.next_intended());
      }
    }
  }
  return at;
}

}  // namespace tools::load_detail
