#include "reports/xml_writer.hpp"

#include <string>

#include "reports/atomic_file.hpp"

namespace reclaim::report {

std::string xml_escape(std::string_view s, XmlContext where) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\t':
      case '\n':
      case '\r':
        // A parser turns raw whitespace in an attribute into a space; a
        // character reference survives, so multi-line messages stay intact.
        if (where == XmlContext::attribute) {
          out += c == '\t' ? "&#9;" : c == '\n' ? "&#10;" : "&#13;";
        } else {
          out += ch;
        }
        break;
      default:
        // XML 1.0 has no way to carry these, not even as references: a raw
        // ESC from a child's stderr would make the whole report unreadable.
        if (c < 0x20 || c == 0x7f) break;
        out += ch;
    }
  }
  return out;
}

// ---- ScopedElement ----------------------------------------------------------

XmlWriter::ScopedElement::ScopedElement(ScopedElement&& other) noexcept : writer_(other.writer_) {
  other.writer_ = nullptr;
}

XmlWriter::ScopedElement::~ScopedElement() {
  if (writer_) writer_->end_element();
}

XmlWriter::ScopedElement& XmlWriter::ScopedElement::attribute(std::string_view name,
                                                              std::string_view value) {
  writer_->attribute(name, value);
  return *this;
}

XmlWriter::ScopedElement& XmlWriter::ScopedElement::attribute(std::string_view name,
                                                              long long value) {
  writer_->attribute(name, std::to_string(value));
  return *this;
}

XmlWriter::ScopedElement& XmlWriter::ScopedElement::text(std::string_view text) {
  writer_->text(text);
  return *this;
}

// ---- XmlWriter --------------------------------------------------------------

XmlWriter::XmlWriter(std::FILE* out, int base_depth) : out_(out), base_depth_(base_depth) {}

XmlWriter::~XmlWriter() {
  while (!open_.empty()) end_element();
  finish_line();
}

void XmlWriter::put(std::string_view s) {
  if (s.empty()) return;
  std::fwrite(s.data(), 1, s.size(), out_);
  at_line_start_ = s.back() == '\n';
}

void XmlWriter::finish_line() {
  if (!at_line_start_) put("\n");
}

void XmlWriter::indent() {
  finish_line();
  std::string pad(static_cast<std::size_t>(base_depth_ + static_cast<int>(open_.size())) * 2, ' ');
  put(pad);
}

void XmlWriter::close_start_tag() {
  if (!tag_open_) return;
  put(">");
  tag_open_ = false;
}

void XmlWriter::declaration() { put("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"); }

XmlWriter::ScopedElement XmlWriter::scoped_element(std::string_view name) {
  start_element(name);
  return ScopedElement(this);
}

XmlWriter& XmlWriter::start_element(std::string_view name) {
  close_start_tag();
  indent();
  put("<");
  put(name);
  open_.emplace_back(name);
  tag_open_ = true;
  has_text_ = false;
  return *this;
}

XmlWriter& XmlWriter::attribute(std::string_view name, std::string_view value) {
  if (!tag_open_) return *this;  // contract breach; dropping beats malformed output
  put(" ");
  put(name);
  put("=\"");
  put(xml_escape(value, XmlContext::attribute));
  put("\"");
  return *this;
}

XmlWriter& XmlWriter::text(std::string_view text) {
  if (text.empty()) return *this;
  close_start_tag();
  put(xml_escape(text, XmlContext::text));
  has_text_ = true;
  return *this;
}

XmlWriter& XmlWriter::end_element() {
  if (open_.empty()) return *this;
  std::string name = std::move(open_.back());
  open_.pop_back();
  if (tag_open_) {
    put("/>");
    tag_open_ = false;
  } else {
    if (!has_text_) indent();
    put("</");
    put(name);
    put(">");
  }
  has_text_ = false;
  return *this;
}

std::error_code XmlWriter::raw_children(std::FILE* fragments) {
  close_start_tag();
  finish_line();
  std::error_code ec = copy_stream(fragments, out_);
  // Fragments end with a newline; the parent's closing tag then indents.
  at_line_start_ = true;
  has_text_ = false;
  return ec;
}

}  // namespace reclaim::report
