/* numpy arrays seen from C through the buffer protocol, for the compiled parts of the engine
 * (numpy's own C API is not needed: arrays are made by calling numpy, and read through buffers). */
#include "buffers.h"

PyObject *ss_dt_i64, *ss_dt_f64, *ss_dt_bool;
static PyObject *np_empty, *np_ascontig;

int ss_buffers_init(void) {
    PyObject *np = PyImport_ImportModule("numpy");
    if (!np) return -1;
    np_empty = PyObject_GetAttrString(np, "empty");
    np_ascontig = PyObject_GetAttrString(np, "ascontiguousarray");
    ss_dt_i64 = PyObject_GetAttrString(np, "int64");
    ss_dt_f64 = PyObject_GetAttrString(np, "float64");
    ss_dt_bool = PyObject_GetAttrString(np, "bool_");
    Py_DECREF(np);
    return (np_empty && np_ascontig && ss_dt_i64 && ss_dt_f64 && ss_dt_bool) ? 0 : -1;
}

/* A numpy column of ``owner`` held for the object's lifetime (written to unless ``readonly``). */
int ss_column(PyObject *owner, const char *name, Py_buffer *view, Py_ssize_t itemsize, int readonly) {
    PyObject *arr = PyObject_GetAttrString(owner, name);
    if (!arr) return -1;
    int rc = PyObject_GetBuffer(arr, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (readonly ? 0 : PyBUF_WRITABLE));
    Py_DECREF(arr);
    if (rc < 0) return -1;
    if (view->itemsize != itemsize || view->ndim != 1) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "decode set: column %s has items of %zd bytes, expected %zd",
                     name, view->itemsize, itemsize);
        return -1;
    }
    return 0;
}

/* A read-only C-contiguous view of ``obj`` as int64 / float64 / bool; *tmp holds a converted copy. */
int ss_view_as(PyObject *obj, PyObject *dtype, char kind, Py_buffer *v, PyObject **tmp) {
    *tmp = NULL;
    if (PyObject_GetBuffer(obj, v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) == 0) {
        char f = v->format[0];
        if (f == '<' || f == '=' || f == '@') f = v->format[1];
        int ok = v->ndim <= 1 && ((kind == 'i' && v->itemsize == 8 && (f == 'q' || f == 'l')) ||
                                  (kind == 'd' && v->itemsize == 8 && f == 'd') ||
                                  (kind == '?' && v->itemsize == 1 && f == '?'));
        if (ok) return 0;
        PyBuffer_Release(v);
    } else {
        PyErr_Clear();
    }
    *tmp = PyObject_CallFunctionObjArgs(np_ascontig, obj, dtype, NULL);
    if (!*tmp) return -1;
    if (PyObject_GetBuffer(*tmp, v, PyBUF_C_CONTIGUOUS) < 0) { Py_CLEAR(*tmp); return -1; }
    return 0;
}

void ss_unview(Py_buffer *v, PyObject *tmp) { PyBuffer_Release(v); Py_XDECREF(tmp); }

/* A new numpy array of ``n`` items of ``dtype``; *data points at its items. */
PyObject *ss_new_array(Py_ssize_t n, PyObject *dtype, void **data) {
    PyObject *arr = PyObject_CallFunction(np_empty, "nO", n, dtype);
    if (!arr) return NULL;
    Py_buffer v;
    if (PyObject_GetBuffer(arr, &v, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) { Py_DECREF(arr); return NULL; }
    *data = v.buf;
    PyBuffer_Release(&v);   /* the array owns its memory; the pointer stays valid while it lives */
    return arr;
}
