/* numpy arrays seen from C through the buffer protocol (buffers.c). */
#ifndef SERVESIM_BUFFERS_H
#define SERVESIM_BUFFERS_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

extern PyObject *ss_dt_i64, *ss_dt_f64, *ss_dt_bool;   /* numpy.int64, float64, bool_ */

/* numpy's functions and dtypes, looked up once; -1 with an exception set on failure. */
int ss_buffers_init(void);
/* Attribute ``name`` of ``owner``, a 1-D C-contiguous array of 8-byte items, held in ``view``
 * (writable unless ``readonly``); -1 with an exception set if it is not one. */
int ss_column(PyObject *owner, const char *name, Py_buffer *view, Py_ssize_t itemsize, int readonly);
/* A read-only C-contiguous view of ``obj`` as int64 ('i'), float64 ('d') or bool ('?'); *tmp holds
 * a converted copy where ``obj`` was not one already. Release with ss_unview. */
int ss_view_as(PyObject *obj, PyObject *dtype, char kind, Py_buffer *v, PyObject **tmp);
void ss_unview(Py_buffer *v, PyObject *tmp);
/* A new numpy array of ``n`` items of ``dtype``; *data points at its items while it lives. */
PyObject *ss_new_array(Py_ssize_t n, PyObject *dtype, void **data);

#endif
