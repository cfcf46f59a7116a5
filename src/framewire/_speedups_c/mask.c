/* apply_mask(): the C twin of framewire.sansio.mask.py_apply_mask (same arguments, same
 * result, same ValueError for a mask that is not 4 bytes).
 *
 * Strategy: XOR bytes one at a time until the output pointer is 8-byte aligned, then XOR 8-byte
 * words with the mask rotated to match that starting offset, then finish the tail bytewise.
 * The input may have any alignment, so words are read with memcpy (compiled to plain loads).
 */

#include "speedups.h"

#include <stdint.h>
#include <string.h>

void
fw_xor_with_mask(const unsigned char *input, unsigned char *output, Py_ssize_t length,
              const unsigned char *mask)
{
    size_t remaining = (size_t)length;
    size_t phase = 0; /* index into the mask of the next byte */

    /* Bytewise head until the output is word-aligned (PyBytes data usually is already). */
    while (remaining > 0 && ((uintptr_t)output & 7) != 0) {
        *output++ = *input++ ^ mask[phase];
        phase = (phase + 1) & 3;
        remaining--;
    }

    /* Repeat the mask over 8 bytes, starting at the current phase. */
    unsigned char word_mask_bytes[8];
    uint64_t word_mask;
    for (size_t k = 0; k < 8; k++) {
        word_mask_bytes[k] = mask[(phase + k) & 3];
    }
    memcpy(&word_mask, word_mask_bytes, 8);

    /* A counted loop over unsigned words, shaped for speed: Python's CFLAGS (-O3 -fwrapv) do
     * not vectorize a signed `index + 8 <= length` loop but do vectorize this one
     * (benchmarks/mask_bench.py: 1 MiB in 22 us instead of 40 us). */
    size_t words = remaining / 8;
    for (size_t w = 0; w < words; w++) {
        uint64_t word;
        memcpy(&word, input + 8 * w, 8);
        word ^= word_mask;
        memcpy(output + 8 * w, &word, 8);
    }
    input += 8 * words;
    output += 8 * words;
    remaining -= 8 * words;

    /* Tail: a whole number of words leaves the phase unchanged. */
    for (size_t k = 0; k < remaining; k++) {
        output[k] = input[k] ^ mask[(phase + k) & 3];
    }
}

const char fw_apply_mask_doc[] = PyDoc_STR(
"apply_mask(data, mask)\n"
"--\n"
"\n"
"Return data XOR-ed with the repeating 4-byte mask (RFC 6455, 5.3).\n"
"\n"
"data is any bytes-like object; mask must be exactly 4 bytes.\n"
"Raises ValueError when the mask is not 4 bytes long.");

PyObject *
fw_apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const keywords[] = {"data", "mask", NULL};
    PyObject *data_object = NULL;
    PyObject *mask_object = NULL;
    Py_buffer data = {0};
    Py_buffer mask = {0};
    PyObject *contiguous_copy = NULL;
    PyObject *result = NULL;

    (void)module;
    if (kwnames == NULL && nargs == 2) {
        data_object = args[0];
        mask_object = args[1];
    }
    else {
        /* Rare path: keyword arguments. Build a tuple/dict and use the classic parser. */
        PyObject *positional = PyTuple_New(nargs);
        PyObject *keyword_dict = NULL;
        int ok;
        if (positional == NULL) {
            return NULL;
        }
        for (Py_ssize_t i = 0; i < nargs; i++) {
            Py_INCREF(args[i]);
            PyTuple_SET_ITEM(positional, i, args[i]);
        }
        if (kwnames != NULL) {
            keyword_dict = PyDict_New();
            if (keyword_dict == NULL) {
                Py_DECREF(positional);
                return NULL;
            }
            for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
                if (PyDict_SetItem(keyword_dict, PyTuple_GET_ITEM(kwnames, i),
                                   args[nargs + i]) < 0) {
                    Py_DECREF(positional);
                    Py_DECREF(keyword_dict);
                    return NULL;
                }
            }
        }
        ok = PyArg_ParseTupleAndKeywords(positional, keyword_dict, "OO:apply_mask",
                                         (char **)keywords, &data_object, &mask_object);
        Py_DECREF(positional);
        Py_XDECREF(keyword_dict);
        if (!ok) {
            return NULL;
        }
    }

    /* The mask first, as in the Python version: a bad mask is a ValueError whatever the data. */
    if (PyObject_GetBuffer(mask_object, &mask, PyBUF_C_CONTIGUOUS) < 0) {
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_Format(PyExc_ValueError, "mask must be 4 bytes, got %zd", mask.len);
        goto exit;
    }
    if (PyObject_GetBuffer(data_object, &data, PyBUF_C_CONTIGUOUS) < 0) {
        /* A strided view (memoryview(b)[::2]) works in Python through bytes(); copy it too. */
        if (!PyErr_ExceptionMatches(PyExc_BufferError)) {
            goto exit;
        }
        PyErr_Clear();
        contiguous_copy = PyBytes_FromObject(data_object);
        if (contiguous_copy == NULL ||
            PyObject_GetBuffer(contiguous_copy, &data, PyBUF_C_CONTIGUOUS) < 0) {
            goto exit;
        }
    }

    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        goto exit;
    }
    fw_xor_with_mask((const unsigned char *)data.buf, (unsigned char *)PyBytes_AS_STRING(result),
                  data.len, (const unsigned char *)mask.buf);

exit:
    if (data.obj != NULL) {
        PyBuffer_Release(&data);
    }
    PyBuffer_Release(&mask);
    Py_XDECREF(contiguous_copy);
    return result;
}
