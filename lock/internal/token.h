// Owner tokens: who holds a lock.
#ifndef LOCK_INTERNAL_TOKEN_H_
#define LOCK_INTERNAL_TOKEN_H_

#include <string>

namespace lock::internal {

// "<host>:<pid>:<32 hex digits>": 128 bits from the OS CSPRNG (getrandom),
// after a readable prefix so an operator can tell which process holds a lock.
// The random part alone makes tokens unique; the prefix is only a label.
std::string NewOwnerToken();

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_TOKEN_H_
