// expect: 8:5 `options` is empty: add an option such as timeout(time: 1, unit: 'HOURS'), or remove the section
// expect: 9:5 `parameters` is empty: declare at least one parameter, or remove the section
// expect: 10:5 `triggers` is empty: add a trigger such as cron('H 4 * * 1-5'), or remove the section
// expect: 15:28 `exclude` is empty: add the axis values it leaves out
// expect: 20:5 `post` is empty: add a condition such as always { … }, or remove the section
pipeline {
    agent any
    options { }
    parameters { }
    triggers { }
    stages {
        stage('Matrix') {
            matrix {
                axes { axis { name 'OS'; values 'linux', 'mac' } }
                excludes { exclude { } }
                stages { stage('M') { steps { echo 'm' } } }
            }
        }
    }
    post { }
}
