/* parse_whole_frames(): the C twin of framewire.sansio.whole_frames.py_parse_whole_frames. */

#include "speedups.h"

const char fw_parse_whole_frames_doc[] = PyDoc_STR(
"parse_whole_frames(data, masked, max_size, out, /)\n"
"--\n"
"\n"
"Append (payload, is_text, True) to out for each whole, unfragmented, uncompressed text or\n"
"binary frame at the start of data; return the number of bytes those frames took.");

/* Unmasked text payloads up to this size are decoded from a stack buffer. */
#define SMALL_TEXT 2048

static PyObject *
frame_payload(const unsigned char *source, Py_ssize_t length, const unsigned char *mask,
              int is_text)
{
    if (!is_text) {
        PyObject *payload = PyBytes_FromStringAndSize(mask ? NULL : (const char *)source, length);
        if (payload != NULL && mask) {
            fw_xor_with_mask(source, (unsigned char *)PyBytes_AS_STRING(payload), length, mask);
        }
        return payload;
    }
    if (!mask) {
        return PyUnicode_DecodeUTF8((const char *)source, length, NULL);
    }
    if (length <= SMALL_TEXT) {
        unsigned char plain[SMALL_TEXT];
        fw_xor_with_mask(source, plain, length, mask);
        return PyUnicode_DecodeUTF8((const char *)plain, length, NULL);
    }
    PyObject *plain = PyBytes_FromStringAndSize(NULL, length);
    if (plain == NULL) {
        return NULL;
    }
    fw_xor_with_mask(source, (unsigned char *)PyBytes_AS_STRING(plain), length, mask);
    PyObject *text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(plain), length, NULL);
    Py_DECREF(plain);
    return text;
}

Py_ssize_t
fw_whole_frames(const unsigned char *bytes, Py_ssize_t end, int masked, Py_ssize_t max_size,
                PyObject *out)
{
    Py_ssize_t position = 0;
    const Py_ssize_t header_length = masked ? 6 : 2;

    while (end - position >= header_length) {
        const unsigned char first_byte = bytes[position];
        if (first_byte != 0x81 && first_byte != 0x82) {
            break;
        }
        const unsigned char second_byte = bytes[position + 1];
        if (((second_byte & 0x80) != 0) != (masked != 0)) {
            break;
        }
        Py_ssize_t length = second_byte & 0x7F;
        Py_ssize_t start = position + header_length;
        if (length >= 126) {
            if (length == 127 || end - position < header_length + 2) {
                break;
            }
            length = ((Py_ssize_t)bytes[position + 2] << 8) | bytes[position + 3];
            start += 2;
        }
        if (length > end - start || (max_size >= 0 && length > max_size)) {
            break;
        }
        const int is_text = first_byte == 0x81;
        PyObject *payload = frame_payload(bytes + start, length, masked ? bytes + start - 4 : NULL,
                                          is_text);
        if (payload == NULL) {
            if (is_text && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                PyErr_Clear(); /* invalid UTF-8: the general path fails the connection */
                break;
            }
            return -1;
        }
        PyObject *piece = PyTuple_Pack(3, payload, is_text ? Py_True : Py_False, Py_True);
        Py_DECREF(payload);
        if (piece == NULL || PyList_Append(out, piece) < 0) {
            Py_XDECREF(piece);
            return -1;
        }
        Py_DECREF(piece);
        position = start + length;
    }
    return position;
}

PyObject *
fw_parse_whole_frames(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data;
    Py_ssize_t max_size = -1; /* no limit */
    Py_ssize_t position = 0;
    int masked;
    PyObject *out;

    (void)module;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "parse_whole_frames() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    out = args[3];
    if (!PyList_Check(out)) {
        PyErr_SetString(PyExc_TypeError, "parse_whole_frames(): out must be a list");
        return NULL;
    }
    masked = PyObject_IsTrue(args[1]);
    if (masked < 0) {
        return NULL;
    }
    if (args[2] != Py_None) {
        /* A limit past PY_SSIZE_T_MAX is clipped to it: no frame can be that large anyway,
         * and the Python twin accepts any int. */
        max_size = PyNumber_AsSsize_t(args[2], NULL);
        if (max_size == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (max_size < 0) {
            PyErr_SetString(PyExc_ValueError, "parse_whole_frames(): max_size must be >= 0");
            return NULL;
        }
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_C_CONTIGUOUS) < 0) {
        return NULL;
    }
    position = fw_whole_frames((const unsigned char *)data.buf, data.len, masked, max_size, out);
    PyBuffer_Release(&data);
    return position < 0 ? NULL : PyLong_FromSsize_t(position);
}
