// The codec's own JSON reader for the top-level members of an object
// (client frames, request bodies, JWT headers and payloads): see
// read_members in codec.hpp.
#include "messages/codec.hpp"
#include "messages/utf8.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace aw::codec {

namespace {

// Accepts exactly what nlohmann accepts (RFC 8259; a UTF-8 byte order mark
// may lead; a number must be finite as a double; nesting is unbounded, so
// it is tracked on a stack, not by recursion). The codec fuzz target holds
// it to nlohmann's json::accept on every input.
class object_scanner {
public:
  // Keeps the members named names[0..count) in out[0..count).
  object_scanner(std::string_view text, const std::string_view* names, member* out,
                 std::size_t count)
      : p_(text.data()), end_(text.data() + text.size()), names_(names), out_(out),
        count_(count) {}

  // False when the text is not JSON.
  bool scan() {
    if (p_ != end_ && byte(*p_) == 0xEF) {
      if (end_ - p_ < 3 || byte(p_[1]) != 0xBB || byte(p_[2]) != 0xBF)
        return false;
      p_ += 3;
    }
    skip_ws();
    if (p_ == end_)
      return false;
    if (*p_ == '{') {
      top_is_object_ = true;
      if (!top_object())
        return false;
    } else if (!skip_value()) {
      return false;
    }
    skip_ws();
    return p_ == end_;
  }
  bool top_is_object() const { return top_is_object_; }

private:
  static unsigned char byte(char c) { return static_cast<unsigned char>(c); }
  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  void skip_ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t'))
      ++p_;
  }
  bool take(char c) {
    if (p_ == end_ || *p_ != c)
      return false;
    ++p_;
    return true;
  }

  // The members of the top-level object; the last of a repeated key counts.
  bool top_object() {
    ++p_;
    skip_ws();
    if (take('}'))
      return true;
    std::string key;
    for (;;) {
      key.clear();
      if (!take('"') || !string_body(&key))
        return false;
      skip_ws();
      if (!take(':'))
        return false;
      skip_ws();
      auto f = index_of(key);
      if (f == count_) {
        if (!skip_value())
          return false;
      } else {
        auto& t = out_[f];
        t = member{};
        if (!member_value(t))
          return false;
      }
      skip_ws();
      if (take(','))
        skip_ws();
      else
        return take('}');
    }
  }

  // count_ for a key not asked for.
  std::size_t index_of(std::string_view key) const {
    for (std::size_t i = 0; i < count_; ++i)
      if (key == names_[i])
        return i;
    return count_;
  }

  bool member_value(member& t) {
    if (p_ == end_)
      return false;
    switch (*p_) {
      case '"':
        ++p_;
        t.k = member::kind::string;
        return string_body(&t.text);
      case '{':
        t.k = member::kind::object;
        return skip_value();
      case '[':
        t.k = member::kind::array;
        return skip_value();
      case 't':
      case 'f':
        t.k = member::kind::boolean;
        return literal();
      case 'n':
        t.k = member::kind::null;
        return literal();
      default:
        t.k = member::kind::number;
        return number(&t.number);
    }
  }

  // One whole value, of any depth, checked and not kept.
  bool skip_value() {
    std::string open; // the unclosed containers, '{' or '['
    for (;;) {
      skip_ws();
      if (p_ == end_)
        return false;
      char c = *p_;
      if (c == '{' || c == '[') {
        ++p_;
        skip_ws();
        if (!take(c == '{' ? '}' : ']')) {
          open.push_back(c);
          if (c == '{' && !member_key())
            return false;
          continue; // the first element
        }
      } else if (c == '"') {
        ++p_;
        if (!string_body(nullptr))
          return false;
      } else if (c == 't' || c == 'f' || c == 'n') {
        if (!literal())
          return false;
      } else if (!number(nullptr)) {
        return false;
      }
      // A value ended: close what it ends, or go on to the next element.
      for (;;) {
        if (open.empty())
          return true;
        skip_ws();
        if (take(',')) {
          if (open.back() == '{' && !member_key())
            return false;
          break;
        }
        if (!take(open.back() == '{' ? '}' : ']'))
          return false;
        open.pop_back();
      }
    }
  }

  // A nested object's `"key" :`.
  bool member_key() {
    skip_ws();
    if (!take('"') || !string_body(nullptr))
      return false;
    skip_ws();
    return take(':');
  }

  bool literal() {
    std::string_view word = *p_ == 't' ? "true" : *p_ == 'f' ? "false" : "null";
    if (static_cast<std::size_t>(end_ - p_) < word.size()
        || std::string_view{p_, word.size()} != word)
      return false;
    p_ += word.size();
    return true;
  }

  // After the opening quote; decodes into `out` unless it is null.
  bool string_body(std::string* out) {
    for (;;) {
      const char* run = p_;
      while (p_ != end_ && byte(*p_) >= 0x20 && byte(*p_) < 0x80 && *p_ != '"'
             && *p_ != '\\')
        ++p_;
      if (out)
        out->append(run, p_);
      if (p_ == end_)
        return false;
      auto c = byte(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c < 0x20)
        return false; // a control character must be escaped
      if (c >= 0x80) {
        auto len = utf8::sequence_length(reinterpret_cast<const unsigned char*>(p_),
                                         static_cast<std::size_t>(end_ - p_));
        if (len == 0)
          return false;
        if (out)
          out->append(p_, len);
        p_ += len;
        continue;
      }
      ++p_; // the backslash
      if (p_ == end_)
        return false;
      char e = *p_++;
      char plain = 0;
      switch (e) {
        case '"': plain = '"'; break;
        case '\\': plain = '\\'; break;
        case '/': plain = '/'; break;
        case 'b': plain = '\b'; break;
        case 'f': plain = '\f'; break;
        case 'n': plain = '\n'; break;
        case 'r': plain = '\r'; break;
        case 't': plain = '\t'; break;
        case 'u': {
          std::uint32_t cp = 0;
          if (!hex4(cp) || (cp >= 0xDC00 && cp <= 0xDFFF))
            return false; // a low surrogate first
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            std::uint32_t low = 0;
            if (!take('\\') || !take('u') || !hex4(low) || low < 0xDC00 || low > 0xDFFF)
              return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          if (out)
            append_utf8(*out, cp);
          continue;
        }
        default:
          return false;
      }
      if (out)
        out->push_back(plain);
    }
  }

  bool hex4(std::uint32_t& cp) {
    if (end_ - p_ < 4)
      return false;
    for (int i = 0; i < 4; ++i) {
      char c = *p_++;
      std::uint32_t v = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : 16;
      if (v == 16)
        return false;
      cp = cp << 4 | v;
    }
    return true;
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | cp >> 6));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | cp >> 12));
      out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | cp >> 18));
      out.push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // JSON's number grammar; the value as nlohmann reads it: an integer that
  // fits (negative: int64, else uint64), otherwise a double, which must be
  // finite.
  bool number(json* out) {
    const char* first = p_;
    take('-');
    if (take('0')) {
    } else if (p_ != end_ && *p_ >= '1' && *p_ <= '9') {
      while (p_ != end_ && is_digit(*p_))
        ++p_;
    } else {
      return false;
    }
    bool integral = true;
    if (take('.')) {
      integral = false;
      if (p_ == end_ || !is_digit(*p_))
        return false;
      while (p_ != end_ && is_digit(*p_))
        ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      integral = false;
      ++p_;
      if (!take('+'))
        take('-');
      if (p_ == end_ || !is_digit(*p_))
        return false;
      while (p_ != end_ && is_digit(*p_))
        ++p_;
    }
    if (integral) {
      if (*first == '-') {
        std::int64_t v = 0;
        if (std::from_chars(first, p_, v).ec == std::errc{}) {
          if (out)
            *out = v;
          return true;
        }
      } else {
        std::uint64_t v = 0;
        if (std::from_chars(first, p_, v).ec == std::errc{}) {
          if (out)
            *out = v;
          return true;
        }
      }
    }
    // strtod, as nlohmann: it rounds as from_chars does, but an underflow
    // is a (tiny or zero) number, not an error.
    std::string token{first, p_};
    double v = std::strtod(token.c_str(), nullptr);
    if (!std::isfinite(v))
      return false;
    if (out)
      *out = v;
    return true;
  }

  const char* p_;
  const char* end_;
  const std::string_view* names_;
  member* out_;
  std::size_t count_;
  bool top_is_object_ = false;
};

} // namespace

scan_result read_members(std::string_view text, const std::string_view* names, member* out,
                         std::size_t count) {
  object_scanner reader{text, names, out, count};
  if (!reader.scan())
    return scan_result::not_json;
  return reader.top_is_object() ? scan_result::object : scan_result::not_object;
}

} // namespace aw::codec
