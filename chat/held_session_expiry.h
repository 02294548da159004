#pragma once
// Ends held sessions (session resume, issue 14) once their window passes, for parleyd and the
// embedding API alike: a one-second timer on the loop calls ChatApp::expire_held(), so a held
// user's `left` goes out at most a second after its window.
#include <cstdint>

#include "chat/chat_app.h"
#include "reactor/event_loop.h"
#include "reactor/timer_wheel.h"

namespace chat {

class HeldSessionExpiry {
 public:
  // Registers a wheel on `loop` and starts ticking when `resume_window_ms` is non-zero (nothing
  // is ever held otherwise). `loop` and `app` must outlive this; loop thread only.
  HeldSessionExpiry(reactor::EventLoop& loop, ChatApp& app, uint64_t resume_window_ms)
      : app_(app), wheel_(loop.now_ms(), &HeldSessionExpiry::on_tick, this, 100) {
    if (resume_window_ms == 0) return;
    loop.add_timer_wheel(&wheel_);
    wheel_.schedule(&tick_, kTickMs);
  }
  HeldSessionExpiry(const HeldSessionExpiry&) = delete;
  HeldSessionExpiry& operator=(const HeldSessionExpiry&) = delete;

 private:
  static constexpr uint32_t kTickMs = 1000;
  static void on_tick(void* context, reactor::TimerNode* node) {
    auto* self = static_cast<HeldSessionExpiry*>(context);
    self->app_.expire_held();
    self->wheel_.schedule(node, kTickMs);
  }

  ChatApp& app_;
  reactor::TimerNode tick_;
  reactor::TimerWheel wheel_;
};

}  // namespace chat
