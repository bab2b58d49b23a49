/* mpc_buf_t and the error convention. */
#include "test.h"

#include <errno.h>
#include <string.h>

#include "mpc/buf.h"
#include "mpc/error.h"

static void test_append_grow(void) {
  mpc_buf_t b = MPC_BUF_INIT;
  for (int i = 0; i < 10000; i++)
    CU_ASSERT_EQUAL_FATAL(mpc_buf_append(&b, &i, sizeof i), 0);
  CU_ASSERT_EQUAL(b.len, 10000 * sizeof(int));
  CU_ASSERT(b.cap >= b.len);
  int ok = 1;
  for (int i = 0; i < 10000; i++)
    ok &= ((int *)b.data)[i] == i;
  CU_ASSERT(ok);
  mpc_buf_free(&b);
  CU_ASSERT_PTR_NULL(b.data);
  CU_ASSERT_EQUAL(b.len, 0);
}

static void test_printf_str(void) {
  mpc_buf_t b = MPC_BUF_INIT;
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&b), "");
  CU_ASSERT_EQUAL(mpc_buf_printf(&b, "%s-%d", "task", 17), 0);
  CU_ASSERT_EQUAL(mpc_buf_printf(&b, "/%05.1f", 2.5), 0);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&b), "task-17/002.5");
  CU_ASSERT_EQUAL(b.len, strlen("task-17/002.5"));
  CU_ASSERT_EQUAL(mpc_buf_set(&b, "xy", 2), 0);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&b), "xy");
  CU_ASSERT_EQUAL(mpc_buf_append(&b, NULL, 0), 0);
  mpc_buf_free(&b);
}

static void test_errors(void) {
  CU_ASSERT_STRING_EQUAL(mpc_strerror(0), "success");
  CU_ASSERT_STRING_EQUAL(mpc_strerror(MPC_ETIMEDOUT), "timed out");
  CU_ASSERT_STRING_EQUAL(mpc_err_name(MPC_ECLOSED), "MPC_ECLOSED");
  CU_ASSERT_STRING_EQUAL(mpc_err_name(-ENOENT), "ENOENT");
  CU_ASSERT_STRING_EQUAL(mpc_strerror(-ENOENT), strerror(ENOENT));
  CU_ASSERT_STRING_EQUAL(mpc_strerror(-999999), "unknown error");
}

MPC_TESTS(buf) = {
    {"append grows and keeps bytes", test_append_grow},
    {"printf and str", test_printf_str},
    {"error names and messages", test_errors},
    CU_TEST_INFO_NULL,
};
