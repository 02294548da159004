#include "reactor/write_queue.h"

#include <algorithm>
#include <cstring>

#include "reactor/socket_ops.h"

namespace reactor {

void WriteQueue::push(SharedBuffer* buffer, size_t offset, size_t length) {
  if (length == 0) return;
  buffer->retain();
  slices_.push_back({buffer, static_cast<uint32_t>(offset), static_cast<uint32_t>(length)});
  bytes_ += length;
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
  slices_.push_back({buffer, 0, static_cast<uint32_t>(length)});
  bytes_ += length;
  return true;
}

IoResult WriteQueue::flush(int fd) {
  size_t written_total = 0;
  while (head_ < slices_.size()) {
    iovec iov[kMaxIov];
    int count = 0;
    for (size_t i = head_; i < slices_.size() && count < kMaxIov; ++i, ++count) {
      iov[count].iov_base = slices_[i].buffer->data() + slices_[i].offset;
      iov[count].iov_len = slices_[i].length;
    }
    IoResult result = write_vector(fd, iov, count);
    if (result.status != IoStatus::kOk) {
      // A queue that never fully drains would otherwise keep every sent slice forever; dropping
      // them once they are half the array keeps it bounded by the live slices, amortised O(1).
      if (head_ >= kMaxIov && head_ * 2 >= slices_.size()) {
        slices_.erase(slices_.begin(), slices_.begin() + static_cast<std::ptrdiff_t>(head_));
        head_ = 0;
      }
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
  }
  slices_.clear();
  head_ = 0;
  return {IoStatus::kOk, written_total, 0};
}

void WriteQueue::clear() {
  for (size_t i = head_; i < slices_.size(); ++i) slices_[i].buffer->release();
  slices_.clear();
  head_ = 0;
  bytes_ = 0;
}

}  // namespace reactor
