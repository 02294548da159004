#include "reactor/write_queue.h"

#include <algorithm>
#include <cstring>

#include "reactor/socket_ops.h"

namespace reactor {

namespace {

// The heap bytes of a malloc'ed block of `bytes` (0 for none), as SharedBuffer counts its own.
size_t allocation_of(size_t bytes) {
  return bytes == 0 ? 0 : SharedBuffer::allocation_bytes_for(bytes - sizeof(SharedBuffer));
}

}  // namespace

WriteQueue::WriteQueue(MemoryAccount* account) : account_(account) {
  static_assert(kSelfMemory >= ((sizeof(WriteQueue) + 8 + 15) & ~size_t{15}), "kSelfMemory is the queue's allocation");
  static_assert(SharedBuffer::allocation_bytes_for(SharedBuffer::capacity_for_allocation(kMinCopyAllocation)) ==
                kMinCopyAllocation);
  if (account_ != nullptr) account_->add(kSelfMemory);
}

WriteQueue::~WriteQueue() {
  clear();
  if (account_ != nullptr) account_->remove(kSelfMemory + array_memory_);
}

void WriteQueue::update_array_memory() {
  size_t now = allocation_of(slices_.capacity() * sizeof(Slice));
  if (now == array_memory_) return;
  if (account_ != nullptr) {
    if (now > array_memory_) account_->add(now - array_memory_);
    else account_->remove(array_memory_ - now);
  }
  array_memory_ = now;
}

void WriteQueue::append_slice(SharedBuffer* buffer, size_t offset, size_t length) {
  buffer->retain();
  slices_.push_back({buffer, static_cast<uint32_t>(offset), static_cast<uint32_t>(length)});
  if (slices_.capacity() * sizeof(Slice) > array_memory_) update_array_memory();
  bytes_ += length;
  // Charged per slice here, and to the account only by the first queue to hold the buffer.
  size_t charge = buffer->allocation_bytes();
  buffer_memory_ += charge;
  if (buffer->queue_references_++ == 0 && account_ != nullptr) account_->add(charge);
}

void WriteQueue::release_slice(const Slice& slice) {
  SharedBuffer* buffer = slice.buffer;
  size_t charge = buffer->allocation_bytes();
  buffer_memory_ -= charge;
  if (--buffer->queue_references_ == 0 && account_ != nullptr) account_->remove(charge);
  buffer->release();
}

void WriteQueue::push(SharedBuffer* buffer, size_t offset, size_t length) {
  // Slices store 32-bit offsets and lengths: larger spans are queued as several slices.
  while (length > 0) {
    size_t take = std::min(length, kMaxSlice);
    append_slice(buffer, offset, take);
    offset += take;
    length -= take;
  }
}

bool WriteQueue::push_copy(const void* a, size_t a_length, const void* b, size_t b_length) {
  const void* pieces[2] = {a, b};
  size_t lengths[2] = {a_length, b_length};
  size_t total = a_length + b_length;
  size_t allocation = kMinCopyAllocation;
  // A private tail buffer (one reference: ours) whose end is the slice's end can grow in place.
  if (head_ < slices_.size() && total != 0) {
    Slice& tail = slices_.back();
    if (tail.buffer->references() == 1 && tail.offset + tail.length == tail.buffer->size()) {
      for (int i = 0; i < 2; ++i) {
        size_t take = std::min(lengths[i], tail.buffer->room());
        if (take == 0) continue;
        tail.buffer->append(pieces[i], take);
        tail.length += static_cast<uint32_t>(take);
        bytes_ += take;
        pieces[i] = static_cast<const uint8_t*>(pieces[i]) + take;
        lengths[i] -= take;
        total -= take;
      }
      // Copies are filling private buffers one after another: grow geometrically, so a long
      // run of them costs few allocations and wastes at most about half of the last one.
      allocation = std::clamp(2 * tail.buffer->allocation_bytes(), kMinCopyAllocation, kMaxCopyAllocation);
    }
  }
  if (total == 0) return true;
  size_t capacity = std::max(total, SharedBuffer::capacity_for_allocation(allocation));
  SharedBuffer* buffer = SharedBuffer::create(capacity);
  if (buffer == nullptr) return false;
  for (int i = 0; i < 2; ++i) {
    if (lengths[i] != 0) buffer->append(pieces[i], lengths[i]);
  }
  push(buffer, 0, total);
  buffer->release();  // push() took its own reference
  return true;
}

IoResult WriteQueue::flush(int fd) {
  auto write_fd = [](void* context, const iovec* iov, int count) {
    return write_vector(*static_cast<int*>(context), iov, count);
  };
  return flush(write_fd, &fd);
}

int WriteQueue::gather(iovec* iov, int max, size_t& requested) const {
  int count = 0;
  requested = 0;
  for (size_t i = head_; i < slices_.size() && count < max; ++i, ++count) {
    iov[count].iov_base = slices_[i].buffer->data() + slices_[i].offset;
    iov[count].iov_len = slices_[i].length;
    requested += slices_[i].length;
  }
  return count;
}

IoStatus WriteQueue::consume(size_t written, size_t requested) {
  bytes_ -= written;
  for (size_t left = written; left > 0;) {
    Slice& slice = slices_[head_];
    if (left >= slice.length) {
      left -= slice.length;
      release_slice(slice);
      ++head_;
    } else {
      slice.offset += static_cast<uint32_t>(left);
      slice.length -= static_cast<uint32_t>(left);
      left = 0;
    }
  }
  if (head_ == slices_.size()) {
    slices_.clear();
    head_ = 0;
    return IoStatus::kOk;
  }
  compact();
  // A short write means the socket buffer is full: the kernel raises a new EPOLLOUT edge
  // when it has room, so another write only to collect EAGAIN would be a wasted syscall.
  return written < requested ? IoStatus::kAgain : IoStatus::kOk;
}

IoResult WriteQueue::flush(VectorWriter write, void* context) {
  size_t written_total = 0;
  while (head_ < slices_.size()) {
    iovec iov[kMaxIov];
    size_t requested = 0;
    int count = gather(iov, kMaxIov, requested);
    IoResult result = write(context, iov, count);
    if (result.status != IoStatus::kOk) {
      compact();
      result.bytes = written_total;
      return result;
    }
    written_total += result.bytes;
    if (consume(result.bytes, requested) == IoStatus::kAgain) return {IoStatus::kAgain, written_total, 0};
  }
  return {IoStatus::kOk, written_total, 0};
}

void WriteQueue::compact() {
  // A queue that never fully drains would otherwise keep every sent slice forever; dropping
  // them once they are half the array keeps it bounded by the live slices, amortised O(1).
  if (head_ >= 64 && head_ * 2 >= slices_.size()) {
    slices_.erase(slices_.begin(), slices_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

void WriteQueue::clear() {
  for (size_t i = head_; i < slices_.size(); ++i) release_slice(slices_[i]);
  slices_.clear();
  head_ = 0;
  bytes_ = 0;
}

}  // namespace reactor
