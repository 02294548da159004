#include "reactor/timer_wheel.h"

#include <bit>
#include <limits>

namespace reactor {

namespace {

constexpr unsigned kDeadlineBits = 48;
constexpr uint64_t kDeadlineMask = (uint64_t{1} << kDeadlineBits) - 1;
// The farthest a deadline may lie ahead of the current tick: 48 stored bits must identify it.
constexpr uint64_t kMaxSpanTicks = kDeadlineMask;

}  // namespace

TimerWheel::TimerWheel(uint64_t now_ms, ExpireFn on_expire, void* context, uint32_t tick_ms)
    : on_expire_(on_expire),
      context_(context),
      tick_ms_(tick_ms == 0 ? 1 : tick_ms),
      origin_ms_(now_ms),
      now_ms_(now_ms) {}

TimerWheel::~TimerWheel() {
  for (TimerNode*& head : heads_) {
    TimerNode* node = head;
    head = nullptr;
    while (node != nullptr) {
      TimerNode* next = node->next_;
      node->next_ = nullptr;
      node->pprev_ = nullptr;
      node = next;
    }
  }
}

void TimerWheel::link(TimerNode* node, unsigned list) {
  TimerNode** head = &heads_[list];
  node->next_ = *head;
  if (node->next_ != nullptr) node->next_->pprev_ = &node->next_;
  node->pprev_ = head;
  *head = node;
  node->list_ = static_cast<uint16_t>(list);
}

void TimerWheel::unlink(TimerNode* node) {
  *node->pprev_ = node->next_;
  if (node->next_ != nullptr) node->next_->pprev_ = node->pprev_;
  node->next_ = nullptr;
  node->pprev_ = nullptr;
  const unsigned list = node->list_;
  if (list < kWheelLists && heads_[list] == nullptr) {
    const unsigned level = list / kSlots;
    occupied_[level] &= ~(uint64_t{1} << (list % kSlots));
    if (occupied_[level] == 0) occupied_levels_ &= ~(1u << level);
  }
}

void TimerWheel::insert(TimerNode* node, uint64_t deadline) {
  node->deadline_low_ = static_cast<uint32_t>(deadline);
  node->deadline_high_ = static_cast<uint16_t>(deadline >> 32);
  // deadline > current_tick_, so the xor is non-zero and its top bit picks the level.
  const unsigned top_bit = 63u - static_cast<unsigned>(std::countl_zero(deadline ^ current_tick_));
  const unsigned level = top_bit / kSlotBits;
  const unsigned slot = static_cast<unsigned>(deadline >> (level * kSlotBits)) & (kSlots - 1);
  link(node, level * kSlots + slot);
  occupied_[level] |= uint64_t{1} << slot;
  occupied_levels_ |= 1u << level;
}

uint64_t TimerWheel::deadline_of(const TimerNode* node) const {
  const uint64_t stored = (uint64_t{node->deadline_high_} << 32) | node->deadline_low_;
  return current_tick_ + ((stored - current_tick_) & kDeadlineMask);
}

uint64_t TimerWheel::next_slot_tick(unsigned* level, unsigned* slot) const {
  // Every slot of level L+1 starts after the current turn of level L ends, so the lowest
  // occupied level holds the earliest slot.
  *level = static_cast<unsigned>(std::countr_zero(occupied_levels_));
  *slot = static_cast<unsigned>(std::countr_zero(occupied_[*level]));
  const unsigned shift = *level * kSlotBits;
  const unsigned turn_shift = shift + kSlotBits;
  const uint64_t turn_start = turn_shift >= 64 ? 0 : (current_tick_ >> turn_shift) << turn_shift;
  return turn_start | (uint64_t{*slot} << shift);
}

void TimerWheel::schedule(TimerNode* node, uint64_t delay_ms) {
  if (node->armed()) {
    unlink(node);
  } else {
    ++size_;
  }
  if (delay_ms == 0) {
    link(node, kDueList);
    return;
  }
  // ceil((now - origin + delay) / tick) without overflow: the deadline tick is the first whose
  // start is at or after the deadline, so the timer can never fire early.
  const uint64_t since_origin = now_ms_ - origin_ms_;
  uint64_t deadline = since_origin / tick_ms_ +
                      (since_origin % tick_ms_ + delay_ms % tick_ms_ + tick_ms_ - 1) / tick_ms_;
  deadline += delay_ms / tick_ms_ < kMaxSpanTicks ? delay_ms / tick_ms_ : kMaxSpanTicks;
  if (deadline - current_tick_ > kMaxSpanTicks) deadline = current_tick_ + kMaxSpanTicks;
  insert(node, deadline);
}

void TimerWheel::cancel(TimerNode* node) {
  if (!node->armed()) return;
  unlink(node);
  --size_;
}

void TimerWheel::collect(unsigned level, unsigned slot) {
  const unsigned list = level * kSlots + slot;
  TimerNode* node = heads_[list];
  heads_[list] = nullptr;
  occupied_[level] &= ~(uint64_t{1} << slot);
  if (occupied_[level] == 0) occupied_levels_ &= ~(1u << level);
  // No callback runs until the whole slot is relinked, so the detached chain stays intact.
  while (node != nullptr) {
    TimerNode* next = node->next_;
    if (level == 0) {
      link(node, kExpiringList);
    } else {
      const uint64_t deadline = deadline_of(node);
      if (deadline == current_tick_) {
        link(node, kExpiringList);
      } else {
        insert(node, deadline);  // lands on a lower level: the groups above now match
      }
    }
    node = next;
  }
}

size_t TimerWheel::fire_expiring() {
  size_t fired = 0;
  // Re-reads the head each time: a callback may have cancelled or moved the next node.
  while (TimerNode* node = heads_[kExpiringList]) {
    unlink(node);
    --size_;
    ++fired;
    if (on_expire_ != nullptr) on_expire_(context_, node);
  }
  return fired;
}

size_t TimerWheel::advance(uint64_t now_ms) {
  if (advancing_) return 0;
  advancing_ = true;
  if (now_ms > now_ms_) now_ms_ = now_ms;
  const uint64_t target_tick = (now_ms_ - origin_ms_) / tick_ms_;
  size_t fired = 0;

  // Delay-0 timers armed before this call; ones armed by these callbacks wait for the next.
  if (TimerNode* first = heads_[kDueList]) {
    heads_[kDueList] = nullptr;
    heads_[kExpiringList] = first;
    first->pprev_ = &heads_[kExpiringList];
    for (TimerNode* node = first; node != nullptr; node = node->next_) node->list_ = kExpiringList;
    fired += fire_expiring();
  }

  // Step from one occupied slot to the next rather than tick by tick, so empty stretches cost
  // nothing. Callbacks may arm timers meanwhile; they count from now_ms_, so they all lie past
  // target_tick and are placed relative to the intermediate current_tick_ like any other.
  while (occupied_levels_ != 0) {
    unsigned level = 0;
    unsigned slot = 0;
    const uint64_t tick = next_slot_tick(&level, &slot);
    if (tick > target_tick) break;
    current_tick_ = tick;
    collect(level, slot);
    fired += fire_expiring();
  }
  // No occupied slot starts in (current_tick_, target_tick], so the invariant holds there too.
  current_tick_ = target_tick;
  advancing_ = false;
  return fired;
}

uint64_t TimerWheel::lateness_ms() const {
  if (!advancing_) return 0;
  // While a slot fires, current_tick_ is its tick: the deadline tick of every timer in it
  // (delay-0 timers, fired before any slot, count as due at the last advance's tick).
  const uint64_t due_ms = origin_ms_ + current_tick_ * tick_ms_;
  return now_ms_ > due_ms ? now_ms_ - due_ms : 0;
}

int64_t TimerWheel::ms_until_next(uint64_t now_ms) const {
  if (size_ == 0) return -1;
  if (heads_[kDueList] != nullptr || heads_[kExpiringList] != nullptr) return 0;
  if (occupied_levels_ == 0) return -1;
  unsigned level = 0;
  unsigned slot = 0;
  const uint64_t tick = next_slot_tick(&level, &slot);
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t at_ms = 0;
  if (__builtin_mul_overflow(tick, tick_ms_, &at_ms) ||
      __builtin_add_overflow(at_ms, origin_ms_, &at_ms)) {
    return static_cast<int64_t>(kMax);
  }
  if (at_ms <= now_ms) return 0;
  const uint64_t wait = at_ms - now_ms;
  return static_cast<int64_t>(wait < kMax ? wait : kMax);
}

}  // namespace reactor
