// The admin page's QR encoder (static/admin/qr.js) against a real decoder: texts of every
// length class from version 1 to 10 (version information appears from 7 on) are encoded,
// drawn as PGM images and read back with zbarimg (Debian's zbar-tools).
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {qrMatrix} from '../../static/admin/qr.js';

/** A binary PGM of the matrix, `scale` pixels a module, with a 4-module quiet zone. */
function pgm({size, get}, scale = 4) {
    const side = (size + 8) * scale;
    const pixels = Buffer.alloc(side * side, 255);
    for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++)
            if (get(x, y))
                for (let dy = 0; dy < scale; dy++)
                    pixels.fill(0, ((y + 4) * scale + dy) * side + (x + 4) * scale, ((y + 4) * scale + dy) * side + (x + 5) * scale);
    return Buffer.concat([Buffer.from(`P5\n${side} ${side}\n255\n`), pixels]);
}

test('every version from 1 to 10 decodes to its text (links are ASCII: URLs percent-encode)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfubox-qr-'));
    try {
        const lengths = [1, 14, 15, 26, 42, 62, 84, 106, 122, 152, 180, 213];
        const sizes = new Set();
        for (const length of lengths) {
            const text = ('https://192.168.1.20:8443/group/office/?token=Ab_9-%C3%A9' + 'x'.repeat(length)).slice(0, length);
            const matrix = qrMatrix(text);
            sizes.add(matrix.size);
            const file = path.join(dir, `qr-${length}.pgm`);
            fs.writeFileSync(file, pgm(matrix));
            const r = spawnSync('zbarimg', ['--quiet', '--raw', file], {encoding: 'utf8'});
            assert.equal(r.status, 0, `length ${length}: ${r.stderr}`);
            assert.equal(r.stdout.replace(/\n$/, ''), text, `length ${length}`);
        }
        assert.ok(sizes.has(21) && sizes.has(57), [...sizes].join(' '));
        assert.throws(() => qrMatrix('x'.repeat(214)), /too long/);
    } finally {
        fs.rmSync(dir, {recursive: true, force: true});
    }
});
