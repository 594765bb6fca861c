// Measurement prototype, not part of the product: a single-threaded Winograd F(2x2, 3x3) convolution in
// AVX-512, to measure what a forward engine other than onnxruntime's CPU provider could gain on WRN-10-2's
// stride-1 3x3 layers (docs/performance.md, "What is left"). bench/winograd.ts compiles and runs it.
//
// Layout as onnxruntime's blocked convolutions: input [N][C/16][H][W][16], output [N][K/16][H][W][16], pad 1,
// stride 1, no bias. Per chunk of output tiles (2x2 outputs each): input transform V = B^T d B into
// V[xi][tile][c], 16 independent GEMMs M[xi] = V[xi] U[xi] (U = G g G^T, recomputed every call, as BAFFLE
// perturbs the weights every pass), output transform Y = A^T M A. The chunk is sized so that V and M stay in
// L2. Checked against a direct convolution in double precision before timing.
//
// Usage: winograd N C K H reps   -> prints "ok maxrel=<x> ms=<median ms per call>"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

namespace {

constexpr int B = 16;  // channel block (AVX-512 floats)
#ifndef CHUNK_KIB
#define CHUNK_KIB 512  // V and M of one chunk of tiles: half this core's L2
#endif

double threadMs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

float* alloc(size_t n) {
  void* p = nullptr;
  if (posix_memalign(&p, 64, n * sizeof(float)) != 0) abort();
  memset(p, 0, n * sizeof(float));
  return static_cast<float*>(p);
}

struct Conv {
  int N, C, K, H, W;
  int tilesH, tilesW, tiles, chunk;
  float* U;  // [16][C][K]
  float* V;  // [16][chunk][C]
  float* M;  // [16][chunk][K]

  Conv(int n, int c, int k, int h, int w) : N(n), C(c), K(k), H(h), W(w) {
    tilesH = h / 2;
    tilesW = w / 2;
    tiles = n * tilesH * tilesW;
    // V and M chunks within ~512 KiB; a multiple of the GEMM's 12-row blocks.
    chunk = std::max(12, std::min(tiles, (CHUNK_KIB * 1024 / 4) / (16 * (c + k)) / 12 * 12));
    U = alloc(size_t(16) * c * k);
    V = alloc(size_t(16) * chunk * c);
    M = alloc(size_t(16) * chunk * k);
  }

  // U[xi][c][k] = (G g G^T)[xi] for weights g [K][C][3][3].
  void filterTransform(const float* g) {
    // c outer, k inner: the stores to U run along k.
    for (int c = 0; c < C; c++) {
      for (int k = 0; k < K; k++) {
        const float* w = g + (size_t(k) * C + c) * 9;
        float t[4][3];
        for (int j = 0; j < 3; j++) {
          t[0][j] = w[j];
          t[1][j] = 0.5f * (w[j] + w[3 + j] + w[6 + j]);
          t[2][j] = 0.5f * (w[j] - w[3 + j] + w[6 + j]);
          t[3][j] = w[6 + j];
        }
        for (int i = 0; i < 4; i++) {
          const float u[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]), 0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
          for (int j = 0; j < 4; j++) U[(size_t(i * 4 + j) * C + c) * K + k] = u[j];
        }
      }
    }
  }

  // Tiles are numbered image by image, row by row.
  void tileAt(int tile, int& n, int& ty, int& tx) const {
    n = tile / (tilesH * tilesW);
    ty = (tile / tilesW) % tilesH;
    tx = tile % tilesW;
  }

  void inputTransform(const float* x, int t0, int count) {
    const __m512 zero = _mm512_setzero_ps();
    for (int t = 0; t < count; t++) {
      int n, ty, tx;
      tileAt(t0 + t, n, ty, tx);
      for (int cb = 0; cb < C / B; cb++) {
        const float* base = x + (size_t(n) * (C / B) + cb) * H * W * B;
        __m512 d[4][4];
        for (int i = 0; i < 4; i++) {
          const int y = 2 * ty - 1 + i;
          for (int j = 0; j < 4; j++) {
            const int xx = 2 * tx - 1 + j;
            d[i][j] = (y >= 0 && y < H && xx >= 0 && xx < W) ? _mm512_load_ps(base + (size_t(y) * W + xx) * B) : zero;
          }
        }
        __m512 s[4][4];
        for (int j = 0; j < 4; j++) {
          s[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
          s[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
          s[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
          s[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
        }
        for (int i = 0; i < 4; i++) {
          const __m512 v[4] = {_mm512_sub_ps(s[i][0], s[i][2]), _mm512_add_ps(s[i][1], s[i][2]), _mm512_sub_ps(s[i][2], s[i][1]),
                               _mm512_sub_ps(s[i][1], s[i][3])};
          for (int j = 0; j < 4; j++) _mm512_storeu_ps(V + (size_t(i * 4 + j) * chunk + t) * C + cb * B, v[j]);
        }
      }
    }
  }

  // M[xi][t][k] = sum_c V[xi][t][c] U[xi][c][k]: 12 rows x 32 columns per register block.
  void gemm(int count) {
    for (int xi = 0; xi < 16; xi++) {
      const float* Vx = V + size_t(xi) * chunk * C;
      const float* Ux = U + size_t(xi) * C * K;
      float* Mx = M + size_t(xi) * chunk * K;
      for (int kb = 0; kb < K; kb += 32) {
        int t = 0;
        for (; t + 12 <= count; t += 12) {
          __m512 acc[12][2];
          for (int r = 0; r < 12; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
          for (int c = 0; c < C; c++) {
            const __m512 b0 = _mm512_loadu_ps(Ux + size_t(c) * K + kb);
            const __m512 b1 = _mm512_loadu_ps(Ux + size_t(c) * K + kb + 16);
            for (int r = 0; r < 12; r++) {
              const __m512 a = _mm512_set1_ps(Vx[size_t(t + r) * C + c]);
              acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
              acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
            }
          }
          for (int r = 0; r < 12; r++) {
            _mm512_storeu_ps(Mx + size_t(t + r) * K + kb, acc[r][0]);
            _mm512_storeu_ps(Mx + size_t(t + r) * K + kb + 16, acc[r][1]);
          }
        }
        for (; t < count; t++) {
          __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
          for (int c = 0; c < C; c++) {
            const __m512 a = _mm512_set1_ps(Vx[size_t(t) * C + c]);
            a0 = _mm512_fmadd_ps(a, _mm512_loadu_ps(Ux + size_t(c) * K + kb), a0);
            a1 = _mm512_fmadd_ps(a, _mm512_loadu_ps(Ux + size_t(c) * K + kb + 16), a1);
          }
          _mm512_storeu_ps(Mx + size_t(t) * K + kb, a0);
          _mm512_storeu_ps(Mx + size_t(t) * K + kb + 16, a1);
        }
      }
    }
  }

  void outputTransform(float* y, int t0, int count) {
    for (int t = 0; t < count; t++) {
      int n, ty, tx;
      tileAt(t0 + t, n, ty, tx);
      for (int kb = 0; kb < K / B; kb++) {
        __m512 m[4][4];
        for (int i = 0; i < 4; i++)
          for (int j = 0; j < 4; j++) m[i][j] = _mm512_loadu_ps(M + (size_t(i * 4 + j) * chunk + t) * K + kb * B);
        __m512 s[2][4];
        for (int j = 0; j < 4; j++) {
          s[0][j] = _mm512_add_ps(_mm512_add_ps(m[0][j], m[1][j]), m[2][j]);
          s[1][j] = _mm512_sub_ps(_mm512_sub_ps(m[1][j], m[2][j]), m[3][j]);
        }
        float* base = y + (size_t(n) * (K / B) + kb) * H * W * B;
        for (int i = 0; i < 2; i++) {
          const __m512 o0 = _mm512_add_ps(_mm512_add_ps(s[i][0], s[i][1]), s[i][2]);
          const __m512 o1 = _mm512_sub_ps(_mm512_sub_ps(s[i][1], s[i][2]), s[i][3]);
          _mm512_store_ps(base + (size_t(2 * ty + i) * W + 2 * tx) * B, o0);
          _mm512_store_ps(base + (size_t(2 * ty + i) * W + 2 * tx + 1) * B, o1);
        }
      }
    }
  }

  void run(const float* x, const float* g, float* y) {
    filterTransform(g);
    for (int t0 = 0; t0 < tiles; t0 += chunk) {
      const int count = std::min(chunk, tiles - t0);
      inputTransform(x, t0, count);
      gemm(count);
      outputTransform(y, t0, count);
    }
  }
};

// Direct convolution in double precision on the blocked layouts (the check).
void direct(const float* x, const float* g, double* y, int N, int C, int K, int H, int W) {
  for (int n = 0; n < N; n++)
    for (int k = 0; k < K; k++)
      for (int oy = 0; oy < H; oy++)
        for (int ox = 0; ox < W; ox++) {
          double s = 0;
          for (int c = 0; c < C; c++)
            for (int ky = 0; ky < 3; ky++)
              for (int kx = 0; kx < 3; kx++) {
                const int iy = oy + ky - 1, ix = ox + kx - 1;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                s += double(x[((size_t(n) * (C / B) + c / B) * H * W + size_t(iy) * W + ix) * B + c % B]) *
                     g[((size_t(k) * C + c) * 3 + ky) * 3 + kx];
              }
          y[((size_t(n) * (K / B) + k / B) * H * W + size_t(oy) * W + ox) * B + k % B] = s;
        }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: winograd N C K H reps\n");
    return 2;
  }
  const int N = atoi(argv[1]), C = atoi(argv[2]), K = atoi(argv[3]), H = atoi(argv[4]), reps = atoi(argv[5]);
  const int W = H;
  if (C % B || K % 32 || H % 2) {
    fprintf(stderr, "C must be a multiple of 16, K of 32, H even\n");
    return 2;
  }
  const size_t xs = size_t(N) * C * H * W, ys = size_t(N) * K * H * W, gs = size_t(K) * C * 9;
  float* x = alloc(xs);
  float* y = alloc(ys);
  std::vector<float> g(gs);
  unsigned s = 12345;
  auto rnd = [&] {
    s = s * 1664525u + 1013904223u;
    return float(s >> 8) / 16777216.0f - 0.5f;
  };
  for (size_t i = 0; i < xs; i++) x[i] = rnd();
  for (auto& v : g) v = rnd() * 0.2f;
  Conv conv(N, C, K, H, W);
  conv.run(x, g.data(), y);
  // Check on the first two images (the direct convolution is slow).
  const int nc = std::min(N, 2);
  std::vector<double> ref(size_t(nc) * K * H * W);
  direct(x, g.data(), ref.data(), nc, C, K, H, W);
  double maxAbs = 0, scale = 0;
  for (size_t i = 0; i < ref.size(); i++) {
    maxAbs = std::max(maxAbs, std::fabs(ref[i] - y[i]));
    scale = std::max(scale, std::fabs(ref[i]));
  }
  const double rel = maxAbs / std::max(1e-30, scale);
  std::vector<double> times;
  for (int r = 0; r < reps; r++) {
    const double t0 = threadMs();
    conv.run(x, g.data(), y);
    times.push_back(threadMs() - t0);
  }
  std::sort(times.begin(), times.end());
  printf("%s maxrel=%.3g ms=%.4f chunk=%d\n", rel < 1e-5 ? "ok" : "MISMATCH", rel, times[times.size() / 2], conv.chunk);
  return rel < 1e-5 ? 0 : 1;
}
