/**
 * @file mpc.h
 * @brief Umbrella header: everything a program using libmpcrun needs.
 *
 *   #include <mpc/mpc.h>      cc prog.c $(pkg-config --cflags --libs mpcrun)
 *
 * Layers: error/buf/log (conventions), process/pipe/queue/shm/dict (local
 * primitives), pool (forked-worker pool), job (what mpc-run runs).
 */
#ifndef MPC_MPC_H
#define MPC_MPC_H

#include "mpc/error.h"
#include "mpc/buf.h"
#include "mpc/log.h"
#include "mpc/process.h"
#include "mpc/pipe.h"
#include "mpc/queue.h"
#include "mpc/shm.h"
#include "mpc/dict.h"
#include "mpc/pool.h"
#include "mpc/job.h"

#define MPC_VERSION_MAJOR 0
#define MPC_VERSION_MINOR 1
#define MPC_VERSION_PATCH 0

#endif /* MPC_MPC_H */
