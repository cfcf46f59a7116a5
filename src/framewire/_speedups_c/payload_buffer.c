#include "speedups.h"

/* ------------------------------------------------------------------------------------------
 * PayloadBuffer (C only; see framewire.sansio.payload_buffer). One large
 * frame's payload is unmasked straight into a bytes object made at its final size, and handed
 * out by take() without a join (see payload_buffer.py for why).
 */

typedef struct {
    PyObject_HEAD
    PyObject *payload; /* a bytes object of the frame's length, filled in place; NULL once taken */
    Py_ssize_t filled;
    Py_ssize_t exports; /* buffer views alive */
} PayloadBufferObject;

static PyObject *
payload_buffer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t length;
    static char *keywords[] = {"length", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "n:PayloadBuffer", keywords, &length)) {
        return NULL;
    }
    if (length < 0) {
        PyErr_SetString(PyExc_ValueError, "PayloadBuffer length must be >= 0");
        return NULL;
    }
    PayloadBufferObject *self = (PayloadBufferObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->payload = PyBytes_FromStringAndSize(NULL, length);
    if (self->payload == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void
payload_buffer_dealloc(PayloadBufferObject *self)
{
    Py_XDECREF(self->payload);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
payload_buffer_unmask_into(PayloadBufferObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, mask;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "unmask_into() takes data and mask");
        return NULL;
    }
    if (self->payload == NULL) {
        PyErr_SetString(PyExc_ValueError, "the payload was already taken");
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &mask, PyBUF_C_CONTIGUOUS) < 0) {
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_Format(PyExc_ValueError, "mask must be 4 bytes, got %zd", mask.len);
        PyBuffer_Release(&mask);
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&mask);
        return NULL;
    }
    Py_ssize_t room = PyBytes_GET_SIZE(self->payload) - self->filled;
    if (data.len > room) {
        PyErr_Format(PyExc_ValueError, "%zd bytes do not fit in the %zd left", data.len, room);
        PyBuffer_Release(&data);
        PyBuffer_Release(&mask);
        return NULL;
    }
    /* The mask's phase follows the payload offset (RFC 6455 5.3: j MOD 4). */
    unsigned char rotated[4];
    const unsigned char *key = (const unsigned char *)mask.buf;
    for (int k = 0; k < 4; k++) {
        rotated[k] = key[(self->filled + k) & 3];
    }
    fw_xor_with_mask((const unsigned char *)data.buf,
                  (unsigned char *)PyBytes_AS_STRING(self->payload) + self->filled, data.len,
                  rotated);
    self->filled += data.len;
    PyBuffer_Release(&data);
    PyBuffer_Release(&mask);
    Py_RETURN_NONE;
}

static PyObject *
payload_buffer_take(PayloadBufferObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->payload == NULL) {
        PyErr_SetString(PyExc_ValueError, "the payload was already taken");
        return NULL;
    }
    if (self->filled != PyBytes_GET_SIZE(self->payload)) {
        PyErr_Format(PyExc_ValueError, "the payload is not complete: %zd of %zd bytes",
                     self->filled, PyBytes_GET_SIZE(self->payload));
        return NULL;
    }
    PyObject *payload = self->payload;
    if (self->exports == 0) {
        self->payload = NULL; /* hand over our reference: nobody else can see it */
        return payload;
    }
    Py_INCREF(payload); /* views still read it: share it (it is complete, never written again) */
    return payload;
}

static PyObject *
payload_buffer_get_filled(PayloadBufferObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->filled);
}

static Py_ssize_t
payload_buffer_length(PayloadBufferObject *self)
{
    return self->payload == NULL ? 0 : PyBytes_GET_SIZE(self->payload);
}

static int
payload_buffer_getbuffer(PayloadBufferObject *self, Py_buffer *view, int flags)
{
    if (self->payload == NULL) {
        PyErr_SetString(PyExc_BufferError, "the payload was already taken");
        view->obj = NULL;
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)self, PyBytes_AS_STRING(self->payload),
                          PyBytes_GET_SIZE(self->payload), 1, flags) < 0) {
        return -1;
    }
    self->exports++;
    return 0;
}

static void
payload_buffer_releasebuffer(PayloadBufferObject *self, Py_buffer *Py_UNUSED(view))
{
    self->exports--;
}

static PyBufferProcs payload_buffer_as_buffer = {
    .bf_getbuffer = (getbufferproc)payload_buffer_getbuffer,
    .bf_releasebuffer = (releasebufferproc)payload_buffer_releasebuffer,
};

static PySequenceMethods payload_buffer_as_sequence = {
    .sq_length = (lenfunc)payload_buffer_length,
};

static PyMethodDef payload_buffer_methods[] = {
    {"unmask_into", (PyCFunction)(void (*)(void))payload_buffer_unmask_into, METH_FASTCALL,
     "Unmask data (the next bytes of the payload) into the buffer with the frame's mask."},
    {"take", (PyCFunction)payload_buffer_take, METH_NOARGS,
     "Return the complete payload as bytes, without copying it."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef payload_buffer_getset[] = {
    {"filled", (getter)payload_buffer_get_filled, NULL, "Bytes written so far.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject fw_PayloadBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "framewire._speedups.PayloadBuffer",
    .tp_doc = "PayloadBuffer(length): one frame's payload, unmasked in place, taken whole.",
    .tp_basicsize = sizeof(PayloadBufferObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = payload_buffer_new,
    .tp_dealloc = (destructor)payload_buffer_dealloc,
    .tp_as_buffer = &payload_buffer_as_buffer,
    .tp_as_sequence = &payload_buffer_as_sequence,
    .tp_methods = payload_buffer_methods,
    .tp_getset = payload_buffer_getset,
};
