// llama-matmul: the matrix products of one token (or of a batch of tokens)
// through every quantized 2-D weight of a GGUF file, computed by
// llama.cpp's own CPU backend (ggml), one thread. count.sh counts the
// instructions it executes under qemu when the full llama.cpp tools are not
// built: it is the lower bound of llama.cpp's cost per token, the part that
// dominates it, with nothing of edgelm in it.
//
//   llama-matmul MODEL.gguf TOKENS REPEATS
//
// multiplies every weight by TOKENS activation vectors at once, REPEATS
// times (decode: TOKENS=1; prefill: TOKENS=P, REPEATS=1), except the output
// matrix, by one: a prefill asks for the last token's logits only (as
// llama-bench's and edgelm bench's do).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"
#include "ggml-cpu.h"
#include "gguf.h"

int main(int argc, char ** argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL.gguf TOKENS REPEATS\n", argv[0]);
        return 2;
    }
    int tokens = atoi(argv[2]), repeats = atoi(argv[3]);
    if (tokens < 1 || repeats < 0) {
        fprintf(stderr, "llama-matmul: TOKENS must be >= 1 and REPEATS >= 0\n");
        return 2;
    }
    ggml_cpu_init();
    struct ggml_context * wctx = NULL;
    struct gguf_init_params gp = { .no_alloc = false, .ctx = &wctx };
    struct gguf_context * g = gguf_init_from_file(argv[1], gp);
    if (!g) {
        fprintf(stderr, "llama-matmul: cannot read %s\n", argv[1]);
        return 1;
    }
    // The embedding is looked up, not multiplied, unless the output shares it.
    int tied = ggml_get_tensor(wctx, "output.weight") == NULL;
    double macs = 0;
    for (int r = 0; r < repeats; r++) {
        for (struct ggml_tensor * w = ggml_get_first_tensor(wctx); w; w = ggml_get_next_tensor(wctx, w)) {
            if (ggml_n_dims(w) != 2 || !ggml_is_quantized(w->type) || (!tied && strcmp(w->name, "token_embd.weight") == 0)) {
                continue;
            }
            int out = strcmp(w->name, tied ? "token_embd.weight" : "output.weight") == 0;
            int n = out ? 1 : tokens;
            size_t need = (size_t) n * (w->ne[0] + w->ne[1]) * sizeof(float) + 64u * 1024 * 1024;
            struct ggml_init_params ip = { .mem_size = need, .mem_buffer = NULL, .no_alloc = false };
            struct ggml_context * c = ggml_init(ip);
            struct ggml_tensor * x = ggml_new_tensor_2d(c, GGML_TYPE_F32, w->ne[0], n);
            float * xd = (float *) x->data;
            for (int64_t i = 0; i < w->ne[0] * n; i++) {
                xd[i] = (float) ((i * 7919) % 2001 - 1000) / 1000.0f;
            }
            struct ggml_tensor * y = ggml_mul_mat(c, w, x);
            struct ggml_cgraph * gf = ggml_new_graph(c);
            ggml_build_forward_expand(gf, y);
            if (ggml_graph_compute_with_ctx(c, gf, 1) != GGML_STATUS_SUCCESS) {
                fprintf(stderr, "llama-matmul: %s: compute failed\n", w->name);
                return 1;
            }
            macs += (double) w->ne[0] * w->ne[1] * n;
            ggml_free(c);
        }
    }
    printf("%.0f multiply-adds\n", macs);
    gguf_free(g);
    ggml_free(wctx);
    return 0;
}
