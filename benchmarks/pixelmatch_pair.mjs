// One pair, as BackstopJS-style tools compare it: decode both PNGs with pngjs, pad them to the
// same size when the page height changed (pixelmatch needs equal sizes; the padding counts as
// different), run pixelmatch with its defaults (threshold 0.1, anti-aliasing detection on) and
// write the diff image. Usage: node pixelmatch_pair.mjs ref.png test.png diff.png
import fs from 'fs';
import {PNG} from 'pngjs';
import pixelmatch from 'pixelmatch';

const [,, refPath, testPath, diffPath] = process.argv;
const a = PNG.sync.read(fs.readFileSync(refPath));
const b = PNG.sync.read(fs.readFileSync(testPath));
const width = Math.max(a.width, b.width);
const height = Math.max(a.height, b.height);

function padded(img) {
    if (img.width === width && img.height === height) return img.data;
    const out = Buffer.alloc(width * height * 4);  // transparent black where the image has no pixels
    for (let y = 0; y < img.height; y++) {
        img.data.copy(out, y * width * 4, y * img.width * 4, (y + 1) * img.width * 4);
    }
    return out;
}

const diff = new PNG({width, height});
const n = pixelmatch(padded(a), padded(b), diff.data, width, height, {threshold: 0.1});
fs.writeFileSync(diffPath, PNG.sync.write(diff));
console.log(`${n} different pixels`);
process.exit(n ? 1 : 0);
