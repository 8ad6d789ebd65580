// A read-only memory-mapped file. Tensor views point into it; it must outlive them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace origami {

class MappedFile {
 public:
  // Maps the whole file read-only. Throws origami::Error (kIo) naming the path on failure.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Drops the pages of [offset, offset+len) from this process (MADV_DONTNEED): used after a
  // tensor was repacked into its own buffer, so the mapped original stops counting as resident.
  void Release(size_t offset, size_t len) const;
  // Hints that [offset, offset+len) will be read soon (MADV_WILLNEED).
  void Prefetch(size_t offset, size_t len) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Anonymous memory from the kernel (not the heap): zero pages until written, so untouched parts
// cost nothing. huge_pages asks for transparent huge pages (fewer faults and TLB misses), but on a
// fragmented machine their first faults can stall on memory compaction.
class AnonymousBuffer {
 public:
  explicit AnonymousBuffer(size_t bytes, bool huge_pages = false);
  ~AnonymousBuffer();
  AnonymousBuffer(const AnonymousBuffer&) = delete;
  AnonymousBuffer& operator=(const AnonymousBuffer&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // Allocates (zeroed) pages for [offset, offset+len) now, in one call instead of a fault per
  // page (MADV_POPULATE_WRITE, Linux 5.14+). False, and nothing done, where unsupported: the
  // first writes then fault the pages in as usual.
  bool Populate(size_t offset, size_t len) const;

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace origami
