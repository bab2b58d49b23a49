/* HDF5 output: /count, /mean, /std, /min, /25%, /50%, /75%, /max (float64
 * [ncols] each), /columns (variable-length UTF-8 strings) and root
 * attributes source, rows, created (UTC ISO 8601), quantiles ("exact" or
 * "sketch").  Written to "<path>.tmp.<pid>" and renamed over <path>.
 *
 * Built on its own as a plugin (STATS_H5_PLUGIN), the one object linked
 * with HDF5; stats.c loads it for --out.  It uses nothing of libmpcrun. */
#include "stats.h"

#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int attr_str(hid_t obj, const char *name, const char *val) {
  hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR), a = -1;
  int rc = -1;
  if (t < 0 || sp < 0 || H5Tset_size(t, strlen(val) + 1) < 0 ||
      H5Tset_cset(t, H5T_CSET_UTF8) < 0)
    goto out;
  a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  if (a >= 0 && H5Awrite(a, t, val) >= 0)
    rc = 0;
out:
  if (a >= 0)
    H5Aclose(a);
  if (sp >= 0)
    H5Sclose(sp);
  if (t >= 0)
    H5Tclose(t);
  return rc;
}

int stats_h5_write(const char *path, const stats_table_t *t, const char *source,
                   uint64_t rows, int exact, char *err, size_t errlen) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) {
    snprintf(err, errlen, "%s: path too long", path);
    return MPC_EINVAL;
  }
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  int rc = MPC_EIO;
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t sp = -1, st = -1, d = -1, sa = -1, a = -1;
  if (f < 0) {
    snprintf(err, errlen, "%s: cannot create HDF5 file", tmp);
    return MPC_EIO;
  }
  hsize_t dims[1] = {t->ncols};
  sp = H5Screate_simple(1, dims, NULL);
  if (sp < 0)
    goto out;
  for (int r = 0; r < 8; r++) {
    d = H5Dcreate2(f, stats_row_names[r], H5T_IEEE_F64LE, sp, H5P_DEFAULT,
                   H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || (t->ncols && H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL,
                                       H5P_DEFAULT, t->val[r]) < 0))
      goto out;
    H5Dclose(d);
    d = -1;
  }
  st = H5Tcopy(H5T_C_S1);
  if (st < 0 || H5Tset_size(st, H5T_VARIABLE) < 0 ||
      H5Tset_cset(st, H5T_CSET_UTF8) < 0)
    goto out;
  d = H5Dcreate2(f, "columns", st, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (d < 0 || (t->ncols && H5Dwrite(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                     t->names) < 0))
    goto out;
  sa = H5Screate(H5S_SCALAR);
  a = H5Acreate2(f, "rows", H5T_STD_U64LE, sa, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0 || H5Awrite(a, H5T_NATIVE_UINT64, &rows) < 0)
    goto out;
  char when[64];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (attr_str(f, "source", source) < 0 || attr_str(f, "created", when) < 0 ||
      attr_str(f, "quantiles", exact ? "exact" : "sketch") < 0)
    goto out;
  rc = 0;
out:
  if (a >= 0)
    H5Aclose(a);
  if (sa >= 0)
    H5Sclose(sa);
  if (d >= 0)
    H5Dclose(d);
  if (st >= 0)
    H5Tclose(st);
  if (sp >= 0)
    H5Sclose(sp);
  if (H5Fclose(f) < 0 && rc == 0)
    rc = MPC_EIO;
  if (rc == 0 && rename(tmp, path) != 0) {
    rc = MPC_EIO;
    snprintf(err, errlen, "%s: rename failed", path);
  } else if (rc != 0) {
    if (!err[0])
      snprintf(err, errlen, "%s: HDF5 write failed", path);
  }
  if (rc)
    unlink(tmp);
  return rc;
}
