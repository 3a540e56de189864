// A small streaming XML writer (after Catch2's XmlWriter): elements are opened
// and closed by RAII scopes, every attribute value and text node is escaped on
// the way out, and markup is never assembled by string concatenation.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace reclaim::report {

enum class XmlContext { text, attribute };

// Escapes `&`, `<`, `>`, `"`, `'` as entities and strips control characters
// XML 1.0 cannot carry (everything below 0x20 but tab, newline and carriage
// return, and DEL). In attributes, tab/newline/CR are written as character
// references so parsers do not normalise them to spaces.
std::string xml_escape(std::string_view s, XmlContext where);

// Writes XML to a stream it does not own. Output is indented two spaces per
// level; text-only elements stay on one line. Write errors are the stream's
// (check std::ferror on it); the writer itself never throws.
class XmlWriter {
 public:
  // Closes one element when it goes out of scope. Move-only; must not
  // outlive the writer that made it.
  class ScopedElement {
   public:
    ScopedElement(ScopedElement&& other) noexcept;
    ScopedElement& operator=(ScopedElement&&) = delete;
    ScopedElement(const ScopedElement&) = delete;
    ScopedElement& operator=(const ScopedElement&) = delete;
    ~ScopedElement();

    ScopedElement& attribute(std::string_view name, std::string_view value);
    ScopedElement& attribute(std::string_view name, long long value);
    ScopedElement& text(std::string_view text);

   private:
    friend class XmlWriter;
    explicit ScopedElement(XmlWriter* writer) : writer_(writer) {}
    XmlWriter* writer_;
  };

  // `base_depth` indents everything as if nested that deep: fragments written
  // separately and later spliced into a document line up with it.
  explicit XmlWriter(std::FILE* out, int base_depth = 0);
  // Closes every element still open; never throws.
  ~XmlWriter();
  XmlWriter(const XmlWriter&) = delete;
  XmlWriter& operator=(const XmlWriter&) = delete;

  void declaration();  // <?xml version="1.0" encoding="UTF-8"?>
  ScopedElement scoped_element(std::string_view name);

  XmlWriter& start_element(std::string_view name);
  // Only valid directly after start_element / another attribute.
  XmlWriter& attribute(std::string_view name, std::string_view value);
  XmlWriter& text(std::string_view text);
  XmlWriter& end_element();

  // Splices pre-rendered, already well-formed XML (e.g. fragments written by
  // another XmlWriter) as children of the current element. Returns the error
  // of reading `fragments` or writing the output, if any.
  std::error_code raw_children(std::FILE* fragments);
  // Ends the current line so the next output starts on a fresh one.
  void finish_line();

 private:
  void close_start_tag();
  void indent();
  void put(std::string_view s);

  std::FILE* out_;
  int base_depth_;
  std::vector<std::string> open_;  // names of open elements, outermost first
  bool tag_open_ = false;          // "<name attr=..." written, ">" not yet
  bool has_text_ = false;          // current element holds text: close inline
  bool at_line_start_ = true;
};

}  // namespace reclaim::report
