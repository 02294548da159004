#pragma once
// Sends of one loop iteration gathered into one io_uring submission (issue 18, "fewer kernel
// crossings"): the writes a loop iteration would make one sendmsg() each are queued here and
// leave in one io_uring_enter, which also waits for their completions. Sends are non-blocking
// (MSG_DONTWAIT): a full socket completes at once with EAGAIN, a short write with its count,
// exactly as sendmsg() would answer, so edge-triggered epoll stays the core of the loop and
// nothing is in flight once complete() returns.
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "reactor/io_result.h"

namespace reactor {

class UringBatch {
 public:
  // Sends queued per submission at most (the ring's size); add_send() refuses beyond.
  static constexpr unsigned kEntries = 256;
  // iovecs one send may gather; a caller with more sends the rest in a later batch.
  static constexpr int kMaxIov = 64;

  UringBatch();
  ~UringBatch();
  UringBatch(const UringBatch&) = delete;
  UringBatch& operator=(const UringBatch&) = delete;

  // Sets up the ring; 0 or -errno (e.g. -EPERM or -ENOSYS under seccomp, io_uring_disabled).
  int open();
  // True once open() succeeded, until a ring failure in complete() closed it (callers then
  // fall back to sendmsg).
  bool is_open() const { return impl_ != nullptr; }

  // Queues a send of iov[0, count) (count <= kMaxIov) on `fd`. The iovecs are copied; the
  // bytes they point to must stay valid until complete() returns. False when the batch is full.
  bool add_send(int fd, const iovec* iov, int count, uint64_t user_data);
  // Sends queued and not yet completed.
  size_t pending() const { return pending_; }

  // Called per completed send with its user_data and what sendmsg() would have returned.
  using Completion = void (*)(void* context, uint64_t user_data, IoResult result);
  // Submits every queued send in one io_uring_enter, waits for all their completions and
  // reports each through `done`. 0, or -errno when the ring failed (then every queued send
  // is reported as an error with that errno, so no connection waits forever).
  int complete(Completion done, void* context);

  // Submissions made (io_uring_enter calls) and sends completed, for tests and /metrics.
  uint64_t submissions() const { return submissions_; }
  uint64_t sends() const { return sends_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  size_t pending_ = 0;
  uint64_t submissions_ = 0;
  uint64_t sends_ = 0;
};

}  // namespace reactor
