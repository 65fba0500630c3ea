/* The compiled decode set's state (decode_set.c: its operations; decode_set_type.c: its Python type). */
#ifndef SERVESIM_DECODE_SET_H
#define SERVESIM_DECODE_SET_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define NONE_LEFT (((int64_t)1) << 62)   /* tokens until the first member finishes, when there is none */

typedef struct {
    PyObject_HEAD
    Py_ssize_t n, cap;
    int64_t *ids, *kv, *off, *end, *held;
    double *last, *maxitl;
    int64_t kv_sum, held_sum, left_min, bs;
    Py_ssize_t loop;
    PyObject *pool, *itl, *counts;          /* the block pool, the ITL log, its rows-per-loop list */
    Py_buffer b_kv, b_gen, b_out, b_lt, b_mi, b_held, b_row0, b_last0;
    int nbuf;                               /* buffers acquired so far (for dealloc) */
} DS;

void DS_dealloc(DS *s);
int DS_init(DS *s, PyObject *args, PyObject *kw);
PyObject *DS_add(DS *s, PyObject *arg);
PyObject *DS_remove(DS *s, PyObject *arg);
PyObject *DS_write_back(DS *s, PyObject *args);
PyObject *DS_remove_finished(DS *s, PyObject *unused);
PyObject *DS_extra_blocks(DS *s, PyObject *arg);
PyObject *DS_reserve(DS *s, PyObject *arg);
PyObject *DS_hold(DS *s, PyObject *arg);
PyObject *DS_grow(DS *s, PyObject *unused);
PyObject *DS_ctx_sums(DS *s, PyObject *args);
PyObject *DS_advance(DS *s, PyObject *const *args, Py_ssize_t nargs);
PyObject *DS_advance_tokens(DS *s, PyObject *args);

#endif
