#include "reactor/uring_batch.h"

#include <errno.h>
#include <liburing.h>
#include <sys/socket.h>

#include <cstring>

namespace reactor {

namespace {

// MSG_DONTWAIT makes io_uring fail a send on a full socket with EAGAIN (REQ_F_NOWAIT) instead
// of arming a poll and finishing it later: the caller keeps the remainder queued and waits for
// the EPOLLOUT edge, as after a short sendmsg(). MSG_NOSIGNAL: EPIPE, never SIGPIPE.
constexpr int kSendFlags = MSG_DONTWAIT | MSG_NOSIGNAL;

IoResult from_completion(int res) {
  if (res >= 0) return {IoStatus::kOk, static_cast<size_t>(res), 0};
  if (res == -EAGAIN || res == -EWOULDBLOCK) return {IoStatus::kAgain, 0, 0};
  if (res == -EINTR) return {IoStatus::kAgain, 0, EINTR};
  return {IoStatus::kError, 0, -res};
}

}  // namespace

// One queued send: its iovecs and msghdr live here until its completion is reaped.
struct UringSlot {
  msghdr message;
  iovec iov[UringBatch::kMaxIov];
  uint64_t user_data;
};

struct UringBatch::Impl {
  io_uring ring;
  UringSlot slots[kEntries];
};

UringBatch::UringBatch() = default;

UringBatch::~UringBatch() {
  if (impl_ != nullptr) io_uring_queue_exit(&impl_->ring);
}

int UringBatch::open() {
  if (impl_ != nullptr) return 0;
  auto impl = std::make_unique<Impl>();
  // One thread submits and reaps (SINGLE_ISSUER), completions are only needed when we ask
  // (DEFER_TASKRUN), and one bad send must not stop the others in its submission (SUBMIT_ALL).
  // Kernels before 6.1 refuse these flags: retry with none.
  io_uring_params params{};
  params.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int rc = io_uring_queue_init_params(kEntries, &impl->ring, &params);
  if (rc == -EINVAL) rc = io_uring_queue_init(kEntries, &impl->ring, 0);
  if (rc < 0) return rc;
  impl_ = std::move(impl);
  return 0;
}

bool UringBatch::add_send(int fd, const iovec* iov, int count, uint64_t user_data) {
  if (impl_ == nullptr || pending_ >= kEntries || count <= 0 || count > kMaxIov) return false;
  io_uring_sqe* sqe = io_uring_get_sqe(&impl_->ring);
  if (sqe == nullptr) return false;
  UringSlot& slot = impl_->slots[pending_];
  slot.user_data = user_data;
  if (count == 1) {
    // One buffer (the usual reply): IORING_OP_SEND skips the msghdr and iovec import.
    io_uring_prep_send(sqe, fd, iov[0].iov_base, iov[0].iov_len, kSendFlags);
  } else {
    std::memcpy(slot.iov, iov, static_cast<size_t>(count) * sizeof(iovec));
    slot.message = msghdr{};
    slot.message.msg_iov = slot.iov;
    slot.message.msg_iovlen = static_cast<size_t>(count);
    io_uring_prep_sendmsg(sqe, fd, &slot.message, kSendFlags);
  }
  io_uring_sqe_set_data64(sqe, pending_);
  ++pending_;
  return true;
}

int UringBatch::complete(Completion done, void* context) {
  if (pending_ == 0) return 0;
  const size_t count = pending_;
  pending_ = 0;
  ++submissions_;
  // Non-blocking sends complete during the submission itself; the wait only collects them.
  int rc = io_uring_submit_and_wait(&impl_->ring, static_cast<unsigned>(count));
  while (rc == -EINTR) rc = io_uring_submit_and_wait(&impl_->ring, static_cast<unsigned>(count));
  // All sends are submitted (SUBMIT_ALL) unless the ring itself failed: then only what did
  // complete is collected, never waited for.
  const bool healthy = rc == static_cast<int>(count);
  size_t reaped = 0;
  bool seen[kEntries] = {};
  while (reaped < count) {
    io_uring_cqe* cqe = nullptr;
    int wait = healthy ? io_uring_wait_cqe(&impl_->ring, &cqe) : io_uring_peek_cqe(&impl_->ring, &cqe);
    if (wait < 0 || cqe == nullptr) break;
    uint64_t index = io_uring_cqe_get_data64(cqe);
    int res = cqe->res;
    io_uring_cqe_seen(&impl_->ring, cqe);
    if (index >= count || seen[index]) continue;
    seen[index] = true;
    ++reaped;
    ++sends_;
    done(context, impl_->slots[index].user_data, from_completion(res));
  }
  if (reaped == count) return 0;
  // The ring failed (it should not: the sends were valid when queued). It is closed, so no
  // stale submission can point at slots reused later, and every send not reported counts as
  // failed: its connection is closed instead of waiting on output that never goes.
  int error = rc < 0 ? -rc : EIO;
  io_uring_queue_exit(&impl_->ring);
  Impl* impl = impl_.release();
  for (size_t i = 0; i < count; ++i) {
    if (!seen[i]) done(context, impl->slots[i].user_data, {IoStatus::kError, 0, error});
  }
  delete impl;
  return -error;
}

}  // namespace reactor
