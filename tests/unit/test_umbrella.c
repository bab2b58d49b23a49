/* The umbrella header compiles on its own and names every module. */
#include "mpc/mpc.h"

#include "test.h"

static void test_umbrella(void) {
  /* One symbol from each layer links. */
  CU_ASSERT_STRING_EQUAL(mpc_err_name(MPC_ENOSPC), "MPC_ENOSPC");
  CU_ASSERT_STRING_EQUAL(mpc_task_status_name(MPC_TASK_TIMEOUT), "timeout");
  CU_ASSERT(mpc_cpu_count() >= 1);
  CU_ASSERT_EQUAL(MPC_JOB_ABI_VERSION, 1);
}

MPC_TESTS(umbrella) = {
    {"mpc.h includes every module", test_umbrella},
    CU_TEST_INFO_NULL,
};
