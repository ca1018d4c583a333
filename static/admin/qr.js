// A small QR code encoder (ISO/IEC 18004), written for sfubox's admin page: byte mode,
// error correction level M, versions 1 to 10 (up to 213 bytes: an invitation link is about
// 60). No dependencies; nothing is loaded from elsewhere. `qrMatrix(text)` gives the modules,
// `qrSvg(text)` an <svg> element to put in the page.

// Level M, per version: [error correction codewords per block, blocks in group 1, data
// codewords per block of group 1, blocks in group 2, data codewords per block of group 2].
const BLOCKS_M = [
    null,
    [10, 1, 16, 0, 0], [16, 1, 28, 0, 0], [26, 1, 44, 0, 0], [18, 2, 32, 0, 0],
    [24, 2, 43, 0, 0], [16, 4, 27, 0, 0], [18, 4, 31, 0, 0], [22, 2, 38, 2, 39],
    [22, 3, 36, 2, 37], [26, 4, 43, 1, 44],
];

// Centres of the alignment patterns, per version.
const ALIGNMENT = [
    null, [], [6, 18], [6, 22], [6, 26], [6, 30], [6, 34],
    [6, 22, 38], [6, 24, 42], [6, 26, 46], [6, 28, 50],
];

// ---------------------------------------------------------------- GF(256) and Reed-Solomon

const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
{
    let x = 1;
    for (let i = 0; i < 255; i++) {
        EXP[i] = x;
        LOG[x] = i;
        x <<= 1;
        if (x & 0x100)
            x ^= 0x11d;
    }
    for (let i = 255; i < 512; i++)
        EXP[i] = EXP[i - 255];
}

function gfMul(a, b) {
    return a === 0 || b === 0 ? 0 : EXP[LOG[a] + LOG[b]];
}

/** The generator polynomial of degree n (coefficients, highest first, leading 1 dropped). */
function generator(n) {
    let poly = [1];
    for (let i = 0; i < n; i++) {
        const next = new Array(poly.length + 1).fill(0);
        for (let j = 0; j < poly.length; j++) {
            next[j] ^= poly[j];
            next[j + 1] ^= gfMul(poly[j], EXP[i]);
        }
        poly = next;
    }
    return poly.slice(1);
}

/** The n error correction codewords of `data`. */
function ecc(data, n) {
    const gen = generator(n);
    const rest = new Array(n).fill(0);
    for (const byte of data) {
        const factor = byte ^ rest.shift();
        rest.push(0);
        for (let i = 0; i < n; i++)
            rest[i] ^= gfMul(gen[i], factor);
    }
    return rest;
}

// ---------------------------------------------------------------- data codewords

/** Byte-mode bit stream of `bytes` for `version`, padded to `capacity` codewords. */
function dataCodewords(bytes, version, capacity) {
    const bits = [];
    const put = (value, length) => {
        for (let i = length - 1; i >= 0; i--)
            bits.push((value >>> i) & 1);
    };
    put(0b0100, 4);
    put(bytes.length, version < 10 ? 8 : 16);
    for (const b of bytes)
        put(b, 8);
    put(0, Math.min(4, capacity * 8 - bits.length));
    while (bits.length % 8)
        bits.push(0);
    const words = [];
    for (let i = 0; i < bits.length; i += 8)
        words.push(bits.slice(i, i + 8).reduce((v, b) => (v << 1) | b, 0));
    for (let pad = 0xec; words.length < capacity; pad ^= 0xec ^ 0x11)
        words.push(pad);
    return words;
}

/** Data and error correction codewords, split into blocks and interleaved. */
function codewords(bytes, version) {
    const [eccPerBlock, blocks1, data1, blocks2, data2] = BLOCKS_M[version];
    const capacity = blocks1 * data1 + blocks2 * data2;
    const data = dataCodewords(bytes, version, capacity);
    const blocks = [];
    let offset = 0;
    for (let i = 0; i < blocks1 + blocks2; i++) {
        const length = i < blocks1 ? data1 : data2;
        const block = data.slice(offset, offset + length);
        offset += length;
        blocks.push({data: block, ecc: ecc(block, eccPerBlock)});
    }
    const out = [];
    for (let i = 0; i < Math.max(data1, data2); i++)
        for (const b of blocks)
            if (i < b.data.length)
                out.push(b.data[i]);
    for (let i = 0; i < eccPerBlock; i++)
        for (const b of blocks)
            out.push(b.ecc[i]);
    return out;
}

// ---------------------------------------------------------------- the matrix

/** Remainder of `value << degree(poly)` divided by `poly` (BCH codes of format and version). */
function bch(value, poly) {
    const degree = Math.floor(Math.log2(poly));
    let r = value << degree;
    while (r >= (1 << degree)) {
        const shift = Math.floor(Math.log2(r)) - degree;
        r ^= poly << shift;
    }
    return (value << degree) | r;
}

const MASKS = [
    (x, y) => (x + y) % 2 === 0,
    (x, y) => y % 2 === 0,
    (x, y) => x % 3 === 0,
    (x, y) => (x + y) % 3 === 0,
    (x, y) => (Math.floor(y / 2) + Math.floor(x / 3)) % 2 === 0,
    (x, y) => ((x * y) % 2) + ((x * y) % 3) === 0,
    (x, y) => (((x * y) % 2) + ((x * y) % 3)) % 2 === 0,
    (x, y) => (((x + y) % 2) + ((x * y) % 3)) % 2 === 0,
];

class Matrix {
    constructor(version) {
        this.version = version;
        this.size = 17 + 4 * version;
        this.dark = new Uint8Array(this.size * this.size);
        this.fixed = new Uint8Array(this.size * this.size);
    }

    set(x, y, dark, fixed = true) {
        this.dark[y * this.size + x] = dark ? 1 : 0;
        if (fixed)
            this.fixed[y * this.size + x] = 1;
    }

    get(x, y) {
        return this.dark[y * this.size + x] === 1;
    }

    isFixed(x, y) {
        return this.fixed[y * this.size + x] === 1;
    }

    /** Finders, separators, timing, alignment, dark module; format and version areas reserved. */
    drawFunctionPatterns() {
        const n = this.size;
        for (const [cx, cy] of [[3, 3], [n - 4, 3], [3, n - 4]]) {
            for (let dy = -4; dy <= 4; dy++) {
                for (let dx = -4; dx <= 4; dx++) {
                    const x = cx + dx, y = cy + dy;
                    if (x < 0 || y < 0 || x >= n || y >= n)
                        continue;
                    const ring = Math.max(Math.abs(dx), Math.abs(dy));
                    this.set(x, y, ring !== 2 && ring !== 4);
                }
            }
        }
        for (let i = 8; i < n - 8; i++) {
            this.set(i, 6, i % 2 === 0);
            this.set(6, i, i % 2 === 0);
        }
        const centres = ALIGNMENT[this.version];
        for (const cx of centres) {
            for (const cy of centres) {
                const nearFinder = (cx === 6 && cy === 6) || (cx === 6 && cy === n - 7) || (cx === n - 7 && cy === 6);
                if (nearFinder)
                    continue;
                for (let dy = -2; dy <= 2; dy++)
                    for (let dx = -2; dx <= 2; dx++)
                        this.set(cx + dx, cy + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
            }
        }
        this.drawFormat(0);
        this.drawVersion();
    }

    /** The 15 format bits (level M, `mask`) in both copies, and the dark module. */
    drawFormat(mask) {
        const n = this.size;
        const bits = bch((0b00 << 3) | mask, 0x537) ^ 0x5412;
        const bit = i => ((bits >>> i) & 1) === 1;
        for (let i = 0; i <= 5; i++)
            this.set(8, i, bit(i));
        this.set(8, 7, bit(6));
        this.set(8, 8, bit(7));
        this.set(7, 8, bit(8));
        for (let i = 9; i < 15; i++)
            this.set(14 - i, 8, bit(i));
        for (let i = 0; i < 8; i++)
            this.set(n - 1 - i, 8, bit(i));
        for (let i = 8; i < 15; i++)
            this.set(8, n - 15 + i, bit(i));
        this.set(8, n - 8, true);
    }

    /** The 18 version bits, from version 7 on. */
    drawVersion() {
        if (this.version < 7)
            return;
        const n = this.size;
        const bits = bch(this.version, 0x1f25);
        for (let i = 0; i < 18; i++) {
            const dark = ((bits >>> i) & 1) === 1;
            const a = n - 11 + (i % 3), b = Math.floor(i / 3);
            this.set(a, b, dark);
            this.set(b, a, dark);
        }
    }

    /** Places the codewords in the zigzag order, skipping function modules. */
    drawData(words) {
        const n = this.size;
        let i = 0;
        const total = words.length * 8;
        for (let right = n - 1; right >= 1; right -= 2) {
            if (right === 6)
                right = 5;
            for (let k = 0; k < n; k++) {
                for (let j = 0; j < 2; j++) {
                    const x = right - j;
                    const upward = ((right + 1) & 2) === 0;
                    const y = upward ? n - 1 - k : k;
                    if (this.isFixed(x, y))
                        continue;
                    const dark = i < total && ((words[i >>> 3] >>> (7 - (i & 7))) & 1) === 1;
                    this.set(x, y, dark, false);
                    i++;
                }
            }
        }
    }

    applyMask(mask) {
        const f = MASKS[mask];
        for (let y = 0; y < this.size; y++)
            for (let x = 0; x < this.size; x++)
                if (!this.isFixed(x, y) && f(x, y))
                    this.dark[y * this.size + x] ^= 1;
    }

    /** The standard's penalty score (lower is better). */
    penalty() {
        const n = this.size;
        let score = 0;
        const lines = [];
        for (let y = 0; y < n; y++) {
            const row = [], column = [];
            for (let x = 0; x < n; x++) {
                row.push(this.get(x, y));
                column.push(this.get(y, x));
            }
            lines.push(row, column);
        }
        const pattern = [true, false, true, true, true, false, true];
        for (const line of lines) {
            let run = 1;
            for (let i = 1; i <= n; i++) {
                if (i < n && line[i] === line[i - 1]) {
                    run++;
                } else {
                    if (run >= 5)
                        score += run - 2;
                    run = 1;
                }
            }
            for (let i = 0; i + 7 <= n; i++) {
                if (!pattern.every((v, k) => line[i + k] === v))
                    continue;
                const before = i >= 4 && [1, 2, 3, 4].every(k => !line[i - k]);
                const after = i + 11 <= n && [7, 8, 9, 10].every(k => !line[i + k]);
                if (before || after)
                    score += 40;
            }
        }
        for (let y = 0; y + 1 < n; y++) {
            for (let x = 0; x + 1 < n; x++) {
                const c = this.get(x, y);
                if (c === this.get(x + 1, y) && c === this.get(x, y + 1) && c === this.get(x + 1, y + 1))
                    score += 3;
            }
        }
        const dark = this.dark.reduce((a, b) => a + b, 0);
        score += Math.floor(Math.abs(dark * 20 - n * n * 10) / (n * n)) * 10;
        return score;
    }
}

/**
 * The QR code of `text` (UTF-8, byte mode, level M) as a matrix: `{size, get(x, y)}`, with
 * `get` true for a dark module. Throws if the text is longer than version 10 holds.
 * @param {string} text
 */
export function qrMatrix(text) {
    const bytes = new TextEncoder().encode(text);
    let version = 1;
    for (; version <= 10; version++) {
        const [, b1, d1, b2, d2] = BLOCKS_M[version];
        const capacityBits = (b1 * d1 + b2 * d2) * 8;
        if (4 + (version < 10 ? 8 : 16) + bytes.length * 8 <= capacityBits)
            break;
    }
    if (version > 10)
        throw new Error('text too long for a QR code');
    const words = codewords(bytes, version);
    let best = null;
    for (let mask = 0; mask < 8; mask++) {
        const m = new Matrix(version);
        m.drawFunctionPatterns();
        m.drawData(words);
        m.applyMask(mask);
        m.drawFormat(mask);
        const score = m.penalty();
        if (!best || score < best.score)
            best = {m, score};
    }
    const m = best.m;
    return {size: m.size, get: (x, y) => m.get(x, y)};
}

/**
 * An <svg> element with the QR code of `text`, `pixels` wide, with the quiet zone.
 * @param {string} text
 * @param {number} [pixels]
 */
export function qrSvg(text, pixels = 240) {
    const {size, get} = qrMatrix(text);
    const quiet = 4;
    const total = size + 2 * quiet;
    let path = '';
    for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++)
            if (get(x, y))
                path += `M${x + quiet} ${y + quiet}h1v1h-1z`;
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', `0 0 ${total} ${total}`);
    svg.setAttribute('width', String(pixels));
    svg.setAttribute('height', String(pixels));
    svg.setAttribute('shape-rendering', 'crispEdges');
    svg.setAttribute('role', 'img');
    const background = document.createElementNS(ns, 'rect');
    background.setAttribute('width', String(total));
    background.setAttribute('height', String(total));
    background.setAttribute('fill', '#fff');
    const modules = document.createElementNS(ns, 'path');
    modules.setAttribute('d', path);
    modules.setAttribute('fill', '#000');
    svg.append(background, modules);
    return svg;
}
