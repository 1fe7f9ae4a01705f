/* What grove-shim reports on its start pipe (fd 4), read by the addon. */
#ifndef GROVE_SHIM_H
#define GROVE_SHIM_H

#include <stdint.h>

struct grove_shim_report
{
  int32_t errnum;   /* 0: started */
  int32_t pid;      /* host pid of the container's init */
  int32_t shim_pid; /* the shim that stays (after its double fork) */
  char msg[1012];   /* the error, when errnum != 0 or pid == 0 */
};

#endif
