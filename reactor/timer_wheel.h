#pragma once
// Hierarchical hashed timing wheel (Varghese & Lauck, "Hashed and Hierarchical Timing Wheels",
// scheme 7) for every timeout the reactor keeps: heartbeats, handshake and close deadlines,
// rate-limit refills. Schedule and cancel are O(1) with no allocation; advance() costs the
// timers that are due plus amortised cascading (each timer moves down at most once per level),
// and jumps over empty slots with occupancy bitmaps, so a clock jump of days is a few steps.
//
// The node lives inside the object that owns the timeout; the callback gets the node back and
// finds its owner with container-of:
//
//   struct Connection { int fd; reactor::TimerNode heartbeat; };
//   void on_expire(void* context, reactor::TimerNode* node) {
//     auto* conn = reinterpret_cast<Connection*>(reinterpret_cast<char*>(node) -
//                                                offsetof(Connection, heartbeat));
//     static_cast<Server*>(context)->on_heartbeat(*conn);
//   }
//
// offsetof is only defined for standard-layout owners (all members under one access level and
// no virtual functions); give any other owner the node as its first base or member instead.
#include <cstddef>
#include <cstdint>

namespace reactor {

class TimerWheel;

// The intrusive link of one timer: 24 bytes, embedded in its owner. A node's address is its
// identity in the wheel, so a copy starts unarmed and assignment leaves both nodes as they were.
struct TimerNode {
  TimerNode() noexcept = default;
  TimerNode(const TimerNode&) noexcept {}
  TimerNode& operator=(const TimerNode&) noexcept { return *this; }
  // Destroying an armed node is a bug (cancel it first). The node still unlinks itself so the
  // wheel is never left pointing at freed memory, but that wheel's size() keeps counting it.
  ~TimerNode() {
    if (pprev_ != nullptr) {
      *pprev_ = next_;
      if (next_ != nullptr) next_->pprev_ = pprev_;
    }
  }

  // True from schedule() until the timer expires, is cancelled, or its wheel is destroyed.
  bool armed() const { return pprev_ != nullptr; }

 private:
  friend class TimerWheel;

  // A singly headed list (head pointer per slot, back link to whatever points at us), so the
  // wheel needs 8 bytes per slot and unlinking needs no list head.
  TimerNode* next_ = nullptr;
  TimerNode** pprev_ = nullptr;
  // The deadline in ticks since the wheel's origin, low 48 bits: the full value is recovered
  // from the wheel's current tick because an armed deadline is always within 2^48 ticks of it.
  uint32_t deadline_low_ = 0;
  uint16_t deadline_high_ = 0;
  // Which of the wheel's lists holds the node, so cancel can clear the slot's occupancy bit.
  uint16_t list_ = 0;
};

static_assert(sizeof(TimerNode) <= 24, "TimerNode sits in every connection");

// One wheel per reactor; not thread-safe. Time is in milliseconds of a monotonic clock, kept in
// ticks of `tick_ms`: a timer never fires before its deadline and at most one tick after it
// (given advance() is called at least once per tick). Deadlines are capped at 2^48-1 ticks
// (about 89,000 years at 10 ms). A node belongs to at most one wheel at a time.
class TimerWheel {
 public:
  // Receives each expired node, already unlinked (not armed). It may schedule or cancel any
  // timer, including this one and others due in the same advance(); it must not call advance().
  using ExpireFn = void (*)(void* context, TimerNode* node);

  // `now_ms` is the current monotonic reading, `tick_ms` the resolution (0 is taken as 1).
  TimerWheel(uint64_t now_ms, ExpireFn on_expire, void* context, uint32_t tick_ms = 10);
  // Leaves every armed node unlinked without calling on_expire.
  ~TimerWheel();
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Arms `node` to fire `delay_ms` after the time of the last advance() (or construction); an
  // armed node is moved. A delay of 0 fires on the next advance(), even one at the same time.
  void schedule(TimerNode* node, uint64_t delay_ms);
  // Disarms `node`; a no-op when it is not armed.
  void cancel(TimerNode* node);
  // Moves the clock to `now_ms` (an earlier reading is ignored) and fires every timer whose
  // deadline has been reached, in deadline-tick order (unspecified within a tick). Returns how
  // many fired; timers armed by callbacks for a later time wait for a later call. Returns 0
  // when called from inside a callback.
  size_t advance(uint64_t now_ms);
  // Moves the clock that schedule() counts from to `now_ms` (an earlier reading is ignored)
  // without firing anything: the event loop reads the clock, dispatches I/O (which may arm
  // timeouts counted from the fresh reading), and only then fires what is due.
  void set_now(uint64_t now_ms) {
    if (now_ms > now_ms_) now_ms_ = now_ms;
  }
  // Inside an on_expire callback: how many milliseconds after its deadline the timer being
  // fired actually fires (the process was busy or not running meanwhile); 0 elsewhere.
  uint64_t lateness_ms() const;
  // Milliseconds from `now_ms` until the next advance() that can fire or cascade something, for
  // the epoll_wait timeout: 0 when something is due already, -1 when nothing is armed. Never
  // later than the earliest timer's expiry; it may be earlier (a cascade of a far timer).
  int64_t ms_until_next(uint64_t now_ms) const;
  // Armed timers, counting those due but not yet fired.
  size_t size() const { return size_; }

 private:
  // Levels of 64 slots each; level L sorts by bits [6L, 6L+6) of the deadline tick. Eleven
  // levels cover 64-bit ticks, so placing a timer never needs an overflow list.
  static constexpr unsigned kSlotBits = 6;
  static constexpr unsigned kSlots = 1u << kSlotBits;
  static constexpr unsigned kLevels = (64 + kSlotBits - 1) / kSlotBits;
  static constexpr unsigned kWheelLists = kLevels * kSlots;
  // Timers scheduled with delay 0, fired at the start of the next advance().
  static constexpr unsigned kDueList = kWheelLists;
  // Timers being fired by the current advance(); a callback may cancel or move them.
  static constexpr unsigned kExpiringList = kWheelLists + 1;
  static constexpr unsigned kListCount = kWheelLists + 2;

  void link(TimerNode* node, unsigned list);
  void unlink(TimerNode* node);
  void insert(TimerNode* node, uint64_t deadline);
  uint64_t deadline_of(const TimerNode* node) const;
  uint64_t next_slot_tick(unsigned* level, unsigned* slot) const;
  void collect(unsigned level, unsigned slot);
  size_t fire_expiring();

  ExpireFn on_expire_;
  void* context_;
  uint64_t tick_ms_;
  uint64_t origin_ms_;  // tick 0
  uint64_t now_ms_;     // the latest reading given to advance(); schedule() counts from it
  // Invariant: every timer in a wheel slot has deadline > current_tick_, and sits at the level
  // of the highest 6-bit group in which its deadline differs from current_tick_. So a level's
  // occupied slots all lie ahead of the current one within the current turn of that level, and
  // the lowest occupied slot of the lowest occupied level is the next thing to happen.
  uint64_t current_tick_ = 0;
  size_t size_ = 0;
  uint32_t occupied_levels_ = 0;  // bit L: occupied_[L] != 0
  bool advancing_ = false;
  uint64_t occupied_[kLevels] = {};
  TimerNode* heads_[kListCount] = {};
};

}  // namespace reactor
