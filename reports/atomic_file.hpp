// Report files that appear all at once. A report is written to a side file
// (`PATH.partial`, `PATH.tmp`) and renamed over PATH only when it is complete,
// so a reader (CI, a merge tool) never sees half a report under the real name.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace reclaim::report {

// Owns a std::FILE*; fclose on destruction.
struct FileCloser {
  void operator()(std::FILE* f) const noexcept;
};
using UniqueFile = std::unique_ptr<std::FILE, FileCloser>;

// A file being written under `final_path + side_suffix`, published as
// `final_path` by commit().
//
// Errors are values: a failed open leaves the object closed with error() set;
// write() after an error does nothing; commit() returns the first error seen.
// The descriptor is opened O_CLOEXEC so ranks spawned meanwhile do not inherit it.
class AtomicFile {
 public:
  AtomicFile() = default;
  // Creates (truncates) `final_path + side_suffix` with mode 0644.
  AtomicFile(std::string final_path, std::string_view side_suffix);
  AtomicFile(AtomicFile&&) noexcept;
  AtomicFile& operator=(AtomicFile&&) noexcept;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  // Not committed: closes and removes the side file (the report is abandoned).
  ~AtomicFile();

  bool is_open() const { return file_ != nullptr; }
  std::error_code error() const { return error_; }
  const std::string& final_path() const { return final_path_; }
  const std::string& side_path() const { return side_path_; }
  std::FILE* stream() const { return file_.get(); }

  // Appends bytes; records the first failure in error().
  void write(std::string_view bytes);
  // Pushes buffered bytes to the kernel, so a reader of the side file (or a
  // post-mortem after the harness is killed) sees everything written so far.
  void flush();
  // Flushes, fsyncs, closes and renames the side file to final_path. After
  // commit the object is closed. Returns the first error of the file's life;
  // on error the side file is removed and final_path is left untouched.
  std::error_code commit();

 private:
  void note_errno();
  void abandon() noexcept;

  std::string final_path_;
  std::string side_path_;
  UniqueFile file_;
  std::error_code error_;
};

// An anonymous scratch file in the directory of `near_path` (O_TMPFILE, or
// created and unlinked at once where O_TMPFILE is unsupported): it has no
// name, so it vanishes with the process however the process ends. Returns
// null and sets `ec` on failure.
UniqueFile open_scratch_file(const std::string& near_path, std::error_code& ec);

// Appends the whole content of `from` (rewound first) to `to`.
std::error_code copy_stream(std::FILE* from, std::FILE* to);

}  // namespace reclaim::report
