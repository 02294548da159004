#include "reactor/shared_buffer.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define PARLEY_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PARLEY_TEST_ASAN 1
#endif
#endif

#ifdef PARLEY_TEST_ASAN
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#endif

// These tests look at a buffer after a release() that was not the last one, which is sound
// while another reference is held; GCC cannot tell that release() from the freeing one.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

namespace {

using reactor::SharedBuffer;

// Bytes the allocator currently has handed out: ASan's own count when it replaces malloc,
// glibc's arena plus mmap totals otherwise. Used to see that the last release() frees.
size_t heap_in_use() {
#ifdef PARLEY_TEST_ASAN
  return __sanitizer_get_current_allocated_bytes();
#else
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
#endif
}

std::string_view view(const SharedBuffer* buffer) {
  return {reinterpret_cast<const char*>(buffer->data()), buffer->size()};
}

TEST(SharedBufferTest, CreateStartsEmptyWithOneReference) {
  SharedBuffer* buffer = SharedBuffer::create(100);
  ASSERT_NE(buffer, nullptr);
  EXPECT_EQ(buffer->size(), 0u);
  EXPECT_EQ(buffer->capacity(), 100u);
  EXPECT_EQ(buffer->room(), 100u);
  EXPECT_EQ(buffer->references(), 1u);
  buffer->release();
}

TEST(SharedBufferTest, CreateZeroCapacity) {
  SharedBuffer* buffer = SharedBuffer::create(0);
  ASSERT_NE(buffer, nullptr);
  EXPECT_EQ(buffer->capacity(), 0u);
  EXPECT_EQ(buffer->room(), 0u);
  buffer->append("", 0);
  EXPECT_EQ(buffer->size(), 0u);
  buffer->release();
}

TEST(SharedBufferTest, BytesFollowTheHeaderInOneAllocation) {
  SharedBuffer* buffer = SharedBuffer::create(16);
  ASSERT_NE(buffer, nullptr);
  EXPECT_EQ(reinterpret_cast<const uint8_t*>(buffer) + sizeof(SharedBuffer), buffer->data());
  const SharedBuffer* const_buffer = buffer;
  EXPECT_EQ(const_buffer->data(), buffer->data());
  buffer->release();
}

TEST(SharedBufferTest, CopyOfHoldsAnExactCopy) {
  const std::string text = "hello, parley";
  SharedBuffer* buffer = SharedBuffer::copy_of(text.data(), text.size());
  ASSERT_NE(buffer, nullptr);
  EXPECT_EQ(buffer->size(), text.size());
  EXPECT_EQ(buffer->capacity(), text.size());
  EXPECT_EQ(buffer->room(), 0u);
  EXPECT_EQ(view(buffer), text);
  EXPECT_EQ(buffer->references(), 1u);
  buffer->release();
}

TEST(SharedBufferTest, CopyOfEmptyAcceptsNullData) {
  SharedBuffer* buffer = SharedBuffer::copy_of(nullptr, 0);
  ASSERT_NE(buffer, nullptr);
  EXPECT_EQ(buffer->size(), 0u);
  EXPECT_EQ(buffer->capacity(), 0u);
  buffer->release();
}

TEST(SharedBufferTest, CopyOfIsIndependentOfTheSource) {
  std::vector<uint8_t> source(4096);
  for (size_t i = 0; i < source.size(); ++i) source[i] = static_cast<uint8_t>(i * 7);
  SharedBuffer* buffer = SharedBuffer::copy_of(source.data(), source.size());
  ASSERT_NE(buffer, nullptr);
  std::vector<uint8_t> expected = source;
  std::memset(source.data(), 0xAA, source.size());
  EXPECT_EQ(std::memcmp(buffer->data(), expected.data(), expected.size()), 0);
  buffer->release();
}

TEST(SharedBufferTest, AppendFillsRoomInOrder) {
  SharedBuffer* buffer = SharedBuffer::create(10);
  ASSERT_NE(buffer, nullptr);
  buffer->append("abc", 3);
  EXPECT_EQ(buffer->size(), 3u);
  EXPECT_EQ(buffer->room(), 7u);
  buffer->append("defg", 4);
  EXPECT_EQ(buffer->room(), 3u);
  buffer->append("hij", 3);
  EXPECT_EQ(buffer->size(), 10u);
  EXPECT_EQ(buffer->room(), 0u);
  EXPECT_EQ(view(buffer), "abcdefghij");
  buffer->append("x", 0);
  EXPECT_EQ(view(buffer), "abcdefghij");
  buffer->release();
}

TEST(SharedBufferTest, SetSizeMovesTheEnd) {
  SharedBuffer* buffer = SharedBuffer::create(8);
  ASSERT_NE(buffer, nullptr);
  std::memcpy(buffer->data(), "12345678", 8);
  buffer->set_size(5);
  EXPECT_EQ(buffer->size(), 5u);
  EXPECT_EQ(buffer->room(), 3u);
  EXPECT_EQ(view(buffer), "12345");
  buffer->append("xy", 2);
  EXPECT_EQ(view(buffer), "12345xy");
  buffer->set_size(0);
  EXPECT_EQ(buffer->room(), 8u);
  buffer->release();
}

TEST(SharedBufferTest, RetainAndReleaseCount) {
  SharedBuffer* buffer = SharedBuffer::copy_of("x", 1);
  ASSERT_NE(buffer, nullptr);
  for (uint32_t i = 2; i <= 1000; ++i) {
    buffer->retain();
    EXPECT_EQ(buffer->references(), i);
  }
  for (uint32_t i = 999; i >= 1; --i) {
    buffer->release();
    ASSERT_EQ(buffer->references(), i);
    // Still alive and intact while any reference remains (ASan would flag a premature free).
    ASSERT_EQ(view(buffer), "x");
  }
  buffer->release();  // the last one: freed (LeakSanitizer would flag it otherwise)
}

TEST(SharedBufferTest, LastReleaseFreesTheAllocation) {
  constexpr size_t kSize = 4u << 20;  // large enough to stand out of any allocator noise
  const size_t before = heap_in_use();
  SharedBuffer* buffer = SharedBuffer::create(kSize);
  ASSERT_NE(buffer, nullptr);
  std::memset(buffer->data(), 0x5A, kSize);
  buffer->set_size(kSize);
  EXPECT_GE(heap_in_use(), before + kSize);

  // Three holders, as three write queues would hold one broadcast frame.
  buffer->retain();
  buffer->retain();
  EXPECT_EQ(buffer->references(), 3u);
  buffer->release();
  buffer->release();
  EXPECT_EQ(buffer->references(), 1u);
  EXPECT_GE(heap_in_use(), before + kSize) << "freed while a reference remained";
  EXPECT_EQ(buffer->data()[kSize - 1], 0x5A);

  buffer->release();
  EXPECT_LT(heap_in_use(), before + kSize / 2) << "the last release() did not free the buffer";
}

TEST(SharedBufferTest, ManyBuffersCreatedAndReleasedReturnTheMemory) {
  const size_t before = heap_in_use();
  std::vector<SharedBuffer*> buffers;
  for (int i = 0; i < 64; ++i) {
    SharedBuffer* buffer = SharedBuffer::create(64 * 1024);
    ASSERT_NE(buffer, nullptr);
    buffer->retain();
    buffers.push_back(buffer);
  }
  EXPECT_GE(heap_in_use(), before + 64u * 64 * 1024);
  for (SharedBuffer* buffer : buffers) buffer->release();
  EXPECT_GE(heap_in_use(), before + 64u * 64 * 1024);
  for (SharedBuffer* buffer : buffers) buffer->release();
  buffers.clear();
  buffers.shrink_to_fit();
  EXPECT_LT(heap_in_use(), before + 64 * 1024);
}

}  // namespace
