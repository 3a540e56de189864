#include "reports/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <utility>

namespace reclaim::report {

namespace {

std::error_code last_error() { return {errno, std::generic_category()}; }

std::string directory_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// fdopen wrapper that does not leak the descriptor when fdopen fails.
UniqueFile adopt(int fd, const char* mode, std::error_code& ec) {
  if (fd < 0) {
    ec = last_error();
    return nullptr;
  }
  std::FILE* f = ::fdopen(fd, mode);
  if (!f) {
    ec = last_error();
    ::close(fd);
    return nullptr;
  }
  return UniqueFile(f);
}

}  // namespace

void FileCloser::operator()(std::FILE* f) const noexcept {
  if (f) std::fclose(f);
}

AtomicFile::AtomicFile(std::string final_path, std::string_view side_suffix)
    : final_path_(std::move(final_path)), side_path_(final_path_ + std::string(side_suffix)) {
  // O_CLOEXEC: the harness spawns ranks while reports are open; a rank that
  // inherited the report descriptor would show up as a leaked fd of its own.
  int fd = ::open(side_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  file_ = adopt(fd, "w", error_);
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : final_path_(std::move(other.final_path_)),
      side_path_(std::move(other.side_path_)),
      file_(std::move(other.file_)),
      error_(other.error_) {}

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
  if (this != &other) {
    abandon();
    final_path_ = std::move(other.final_path_);
    side_path_ = std::move(other.side_path_);
    file_ = std::move(other.file_);
    error_ = other.error_;
  }
  return *this;
}

AtomicFile::~AtomicFile() { abandon(); }

void AtomicFile::abandon() noexcept {
  if (!file_) return;
  file_.reset();
  ::unlink(side_path_.c_str());
}

void AtomicFile::note_errno() {
  if (!error_) error_ = last_error();
}

void AtomicFile::write(std::string_view bytes) {
  if (!file_ || error_ || bytes.empty()) return;
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_.get()) != bytes.size()) note_errno();
}

void AtomicFile::flush() {
  if (!file_ || error_) return;
  if (std::fflush(file_.get()) != 0) note_errno();
}

std::error_code AtomicFile::commit() {
  if (!file_) return error_ ? error_ : std::make_error_code(std::errc::bad_file_descriptor);
  if (!error_ && std::fflush(file_.get()) != 0) note_errno();
  // fsync before rename: otherwise a power cut can leave the new name pointing
  // at an empty file, which is worse than the old report or none.
  if (!error_ && ::fsync(::fileno(file_.get())) != 0) note_errno();
  std::FILE* f = file_.release();
  if (std::fclose(f) != 0) note_errno();
  if (!error_ && std::rename(side_path_.c_str(), final_path_.c_str()) != 0) note_errno();
  if (error_) ::unlink(side_path_.c_str());
  return error_;
}

UniqueFile open_scratch_file(const std::string& near_path, std::error_code& ec) {
  ec.clear();
  std::string dir = directory_of(near_path);
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    // Filesystems without O_TMPFILE: a named file, unlinked before anyone can
    // rely on the name, gives the same "gone with the process" property.
    std::string tmpl = near_path + ".scratch.XXXXXX";
    fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
    if (fd >= 0) ::unlink(tmpl.c_str());
  }
  return adopt(fd, "w+", ec);
}

std::error_code copy_stream(std::FILE* from, std::FILE* to) {
  if (std::fflush(from) != 0 || std::fseek(from, 0, SEEK_SET) != 0) return last_error();
  std::array<char, 1 << 16> buf;
  for (;;) {
    std::size_t n = std::fread(buf.data(), 1, buf.size(), from);
    if (n > 0 && std::fwrite(buf.data(), 1, n, to) != n) return last_error();
    if (n < buf.size()) {
      if (std::ferror(from)) return last_error();
      break;
    }
  }
  return {};
}

}  // namespace reclaim::report
