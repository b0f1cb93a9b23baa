#include "actors/outlet.hpp"

#include "messages/codec.hpp"

namespace aw {

std::string greeting(const socket_subscription& sock, const std::string& user_id,
                     const std::string& epoch, std::uint64_t last_seq) {
  if (sock.rehomed)
    return codec::encode_error(codec::make_replay_gap(epoch, last_seq + 1, std::nullopt));
  return codec::encode_connection_established(sock.connection_id, user_id, epoch, last_seq);
}

} // namespace aw
