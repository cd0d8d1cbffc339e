"""The GLSL 330 shaders of the offscreen thumbnail renderer (`thumbnail_generator`): a lit,
camera-fixed key + fill + ambient model over a uniform colour, vertex colours or a texture."""

VERTEX = """
#version 330
uniform mat4 u_mvp;
in vec3 in_position;
in vec3 in_normal;
in vec4 in_color;
in vec2 in_uv;
out vec3 v_position;
out vec3 v_normal;
out vec4 v_color;
out vec2 v_uv;
void main() {
    v_position = in_position;
    v_normal = in_normal;
    v_color = in_color;
    v_uv = in_uv;
    gl_Position = u_mvp * vec4(in_position, 1.0);
}
"""

FRAGMENT = """
#version 330
uniform vec3 u_eye;
uniform vec3 u_key;
uniform vec3 u_fill;
uniform int u_color_mode;
uniform vec3 u_base;
uniform sampler2D u_texture;
in vec3 v_position;
in vec3 v_normal;
in vec4 v_color;
in vec2 v_uv;
out vec4 f_color;

const float AMBIENT = 0.30;
const float KEY = 0.62;
const float FILL = 0.28;
const float SPECULAR = 0.12;
const float SHININESS = 32.0;

void main() {
    vec3 view = normalize(u_eye - v_position);
    vec3 n = length(v_normal) > 1e-8 ? normalize(v_normal) : view;
    // Two-sided: the inside of an open mesh, or a mesh wound inward, is lit as if facing us.
    if (!gl_FrontFacing) n = -n;
    vec3 albedo = u_base;
    if (u_color_mode == 1) albedo = v_color.rgb;
    if (u_color_mode == 2) albedo = texture(u_texture, v_uv).rgb * u_base;
    float key = max(dot(n, u_key), 0.0);
    float fill = max(dot(n, u_fill), 0.0);
    float highlight = key > 0.0 ? pow(max(dot(n, normalize(u_key + view)), 0.0), SHININESS) : 0.0;
    vec3 lit = albedo * (AMBIENT + KEY * key + FILL * fill) + SPECULAR * highlight;
    f_color = vec4(min(lit, vec3(1.0)), 1.0);
}
"""
