#include "reactor/write_queue.h"

#include <algorithm>
#include <cstring>

#include "reactor/socket_ops.h"

namespace reactor {

void WriteQueue::push(SharedBuffer* buffer, size_t offset, size_t length) {
  // Slices store 32-bit offsets and lengths: larger spans are queued as several slices.
  while (length > 0) {
    size_t take = std::min(length, kMaxSlice);
    buffer->retain();
    slices_.push_back({buffer, static_cast<uint32_t>(offset), static_cast<uint32_t>(take)});
    bytes_ += take;
    offset += take;
    length -= take;
  }
}

bool WriteQueue::push_copy(const void* data, size_t length) {
  auto* bytes = static_cast<const uint8_t*>(data);
  // A private tail buffer (one reference: ours) whose end is the slice's end can grow in place.
  if (head_ < slices_.size()) {
    Slice& tail = slices_.back();
    if (tail.buffer->references() == 1 && tail.offset + tail.length == tail.buffer->size()) {
      size_t take = std::min(length, tail.buffer->room());
      tail.buffer->append(bytes, take);
      tail.length += static_cast<uint32_t>(take);
      bytes_ += take;
      bytes += take;
      length -= take;
    }
  }
  if (length == 0) return true;
  SharedBuffer* buffer = SharedBuffer::create(std::max(length, kCopyChunk));
  if (buffer == nullptr) return false;
  buffer->append(bytes, length);
  push(buffer, 0, length);
  buffer->release();  // push() took its own reference
  return true;
}

IoResult WriteQueue::flush(int fd) {
  auto write_fd = [](void* context, const iovec* iov, int count) {
    return write_vector(*static_cast<int*>(context), iov, count);
  };
  return flush(write_fd, &fd);
}

IoResult WriteQueue::flush(VectorWriter write, void* context) {
  size_t written_total = 0;
  while (head_ < slices_.size()) {
    iovec iov[kMaxIov];
    int count = 0;
    size_t requested = 0;
    for (size_t i = head_; i < slices_.size() && count < kMaxIov; ++i, ++count) {
      iov[count].iov_base = slices_[i].buffer->data() + slices_[i].offset;
      iov[count].iov_len = slices_[i].length;
      requested += slices_[i].length;
    }
    IoResult result = write(context, iov, count);
    if (result.status != IoStatus::kOk) {
      compact();
      result.bytes = written_total;
      return result;
    }
    size_t written = result.bytes;
    written_total += written;
    bytes_ -= written;
    while (written > 0) {
      Slice& slice = slices_[head_];
      if (written >= slice.length) {
        written -= slice.length;
        slice.buffer->release();
        ++head_;
      } else {
        slice.offset += static_cast<uint32_t>(written);
        slice.length -= static_cast<uint32_t>(written);
        written = 0;
      }
    }
    // A short write means the socket buffer is full: the kernel raises a new EPOLLOUT edge
    // when it has room, so a second writev only to collect EAGAIN would be a wasted syscall.
    if (result.bytes < requested) {
      compact();
      return {IoStatus::kAgain, written_total, 0};
    }
  }
  slices_.clear();
  head_ = 0;
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
  for (size_t i = head_; i < slices_.size(); ++i) slices_[i].buffer->release();
  slices_.clear();
  head_ = 0;
  bytes_ = 0;
}

}  // namespace reactor
