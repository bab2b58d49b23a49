/* Error names and messages, generated from MPC_ERRNO_MAP. */
#include "mpc/error.h"

#include <errno.h>
#include <string.h>

const char *mpc_strerror(int err) {
  if (err == 0)
    return "success";
  switch (err) {
#define MPC__ERR_MSG(name, val, msg)                                           \
  case MPC_E##name:                                                            \
    return msg;
    MPC_ERRNO_MAP(MPC__ERR_MSG)
#undef MPC__ERR_MSG
  default:
    break;
  }
  if (err < 0 && err > -4096)
    return strerror(-err); /* glibc strerror returns static text for valid codes */
  return "unknown error";
}

const char *mpc_err_name(int err) {
  if (err == 0)
    return "OK";
  switch (err) {
#define MPC__ERR_NAME(name, val, msg)                                          \
  case MPC_E##name:                                                            \
    return "MPC_E" #name;
    MPC_ERRNO_MAP(MPC__ERR_NAME)
#undef MPC__ERR_NAME
  default:
    break;
  }
  if (err < 0 && err > -4096) {
    const char *n = strerrorname_np(-err);
    if (n)
      return n;
  }
  return "UNKNOWN";
}
