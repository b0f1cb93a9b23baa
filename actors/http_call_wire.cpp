#include "actors/http_call_wire.hpp"

namespace aw {

namespace {

enum bit : std::uint8_t { thread = 1, request = 2, run = 4, agent = 8, epoch = 16, after = 32 };

void put(http_call_wire& w, bit b, const std::optional<std::string>& v, std::string& into) {
  if (v) {
    w.present |= b;
    into = *v;
  }
}

std::optional<std::string> get(const http_call_wire& w, bit b, const std::string& v) {
  if (w.present & b)
    return v;
  return std::nullopt;
}

} // namespace

http_call_wire to_wire(const http_call& call) {
  http_call_wire w;
  if (auto* r = std::get_if<http_run>(&call)) {
    w.kind = 0;
    w.format = static_cast<std::uint8_t>(r->format);
    w.content = r->request.content;
    w.adopt_thread = r->request.adopt_thread;
    put(w, thread, r->request.thread_id, w.thread_id);
    put(w, request, r->request.request_id, w.request_id);
    put(w, run, r->request.run_id, w.run_id);
    put(w, agent, r->request.agent, w.agent);
  } else if (auto* f = std::get_if<http_follow>(&call)) {
    w.kind = 1;
    put(w, epoch, f->epoch, w.epoch);
    if (f->after_seq) {
      w.present |= after;
      w.after_seq = *f->after_seq;
    }
  } else {
    w.kind = 2;
    w.run_id = std::get<http_cancel>(call).run_id;
  }
  return w;
}

http_call from_wire(const http_call_wire& w) {
  if (w.kind == 1) {
    http_follow f;
    f.epoch = get(w, epoch, w.epoch);
    if (w.present & after)
      f.after_seq = w.after_seq;
    return f;
  }
  if (w.kind == 2)
    return http_cancel{w.run_id};
  http_run r;
  r.format = w.format == static_cast<std::uint8_t>(stream_format::agui) ? stream_format::agui
                                                                         : stream_format::lifecycle;
  r.request.content = w.content;
  r.request.adopt_thread = w.adopt_thread;
  r.request.thread_id = get(w, thread, w.thread_id);
  r.request.request_id = get(w, request, w.request_id);
  r.request.run_id = get(w, run, w.run_id);
  r.request.agent = get(w, agent, w.agent);
  return r;
}

} // namespace aw
